"""Declaring an incident end to end: signed slash command in, channel, topic, summary and announcement out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from unittest.mock import ANY

from tests.harness import Harness, eventually


async def test_declare_opens_channel_announces_and_records(bot: Harness) -> None:
    ack = await bot.run("declare sev2 Checkout API 5xx above SLO", user="UALICE")
    assert ack["response_type"] == "ephemeral" and "Declaring SEV2" in ack["text"]

    name = f"inc-{datetime.now(UTC):%Y%m%d}-checkout-api-5xx-above-slo"
    channel = bot.slack.by_name(name)
    assert "UALICE" in channel.members
    due = (await bot.fb.service.get(1)).next_update_due
    assert due is not None
    assert channel.topic.startswith(f"SEV2 | investigating | IC <@UALICE> | next update {due:%H:%M} UTC | INC-1")
    summary = channel.messages[0]
    assert summary["blocks"][0]["text"]["text"] == "INC-1 · Checkout API 5xx above SLO"

    announce = bot.slack.by_name("incidents").messages
    assert len(announce) == 1 and f"<#{channel.id}>" in str(announce[0]["blocks"])

    incident = await bot.fb.store.by_channel(channel.id)
    assert incident is not None
    assert (incident.severity, incident.ic, incident.summary_ts, incident.announce_ts) == (
        2,
        "UALICE",
        summary["ts"],
        announce[0]["ts"],
    )
    kinds = [e.kind.value for e in await bot.fb.store.timeline(incident.id)]
    assert kinds == ["declared", "role_assigned", "channel_created"]
    assert f"Declared *INC-1* (SEV2) in <#{channel.id}>" in bot.last_reply()


async def test_default_severity_and_taken_name_gets_suffix(bot: Harness) -> None:
    today = f"{datetime.now(UTC):%Y%m%d}"
    bot.slack.add_channel(f"inc-{today}-db-failover")
    await bot.run("declare DB failover", user="UALICE")
    await bot.run("declare DB failover", user="UBOB")
    assert bot.slack.by_name(f"inc-{today}-db-failover-2").topic.startswith("SEV3 ")
    assert bot.slack.by_name(f"inc-{today}-db-failover-3").topic.startswith("SEV3 ")


async def test_slack_retry_and_double_submit_create_one_incident(bot: Harness) -> None:
    await bot.command("declare sev1 GPU nodes NotReady", trigger="trig-1")
    await bot.command("declare sev1 GPU nodes NotReady", trigger="trig-1", retry=1)
    await bot.command("declare sev1 GPU nodes NotReady", trigger="trig-2")  # typed twice
    await bot.settle()
    assert len(bot.slack.calls_to("conversations.create")) == 1
    assert len(bot.slack.by_name("incidents").messages) == 1
    assert len(await bot.fb.service.list_open()) == 1
    replies = bot.replies()  # the two jobs run side by side: their replies come in either order
    assert len(replies) == 2
    assert sum("Declared *INC-1*" in r for r in replies) == 1
    assert sum("Nothing new was created" in r for r in replies) == 1


async def test_declare_without_arguments_opens_modal_and_submission_declares_once(bot: Harness) -> None:
    ack = await bot.run("declare", channel="CGENERAL")
    assert ack == {}
    (opened,) = bot.slack.calls_to("views.open")
    view = opened["view"]
    assert view["callback_id"] == "fb_declare"
    submitted = {
        **view,
        "id": "V123",
        "state": {
            "values": {
                "title": {"value": {"type": "plain_text_input", "value": "Inference latency p99 > 2s"}},
                "severity": {"value": {"type": "static_select", "selected_option": {"value": "2"}}},
                "description": {"value": {"type": "plain_text_input", "value": "vLLM queue growing"}},
            }
        },
    }
    assert (await bot.interaction("view_submission", user="UCAROL", view=submitted))[0] == 200
    assert (await bot.interaction("view_submission", user="UCAROL", view=submitted))[0] == 200  # double click
    await bot.settle()
    (incident,) = await bot.fb.service.list_open()
    assert (incident.title, incident.severity, incident.description, incident.ic) == (
        "Inference latency p99 > 2s",
        2,
        "vLLM queue growing",
        "UCAROL",
    )
    assert len(bot.slack.calls_to("conversations.create")) == 1
    (confirm,) = bot.slack.calls_to("chat.postEphemeral")
    assert confirm["user"] == "UCAROL" and "Declared *INC-" in confirm["text"]


async def test_modal_with_empty_title_is_rejected_in_the_form(bot: Harness) -> None:
    blank_title = {
        "id": "V9",
        "type": "modal",
        "callback_id": "fb_declare",
        "private_metadata": "CGENERAL",
        "state": {"values": {"title": {"value": {"value": "  "}}}},
    }
    status, body = await bot.interaction("view_submission", user="UCAROL", view=blank_title)
    assert status == 200
    assert json.loads(body) == {"response_action": "errors", "errors": {"title": ANY}}
    await bot.settle()
    assert await bot.fb.service.list_open() == []


async def test_ack_comes_before_slack_work(bot: Harness) -> None:
    """Slack gives 3 s; firebreak answers first and does the slow part afterwards."""
    gate = bot.slack.gates["conversations.create"] = asyncio.Event()
    try:
        ack = await bot.command("declare sev1 Slack is slow today")
        assert "Declaring SEV1" in ack["text"]
        await eventually(
            lambda: bot.slack.calls_to("conversations.create"),
            within=2,
            what="the post-ack job never reached Slack",
            interval=0.01,
        )
        assert not bot.slack.responses
        (incident,) = await bot.fb.service.list_open()
        assert incident.channel_id is None, "acked while the channel is still being created"
    finally:
        gate.set()
    await bot.settle()
    assert (await bot.fb.service.get(incident.id)).channel_id is not None
    assert "Declared *INC-1*" in bot.last_reply()
