"""Alertmanager's webhook into incidents, through the real endpoint: refusals, one incident per root cause,
repeats that change nothing, resolved alerts, alert quality, inhibition, and the storm message."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import make_settings
from tests.harness import Harness, running
from tests.slack_standin import SlackStandIn

TOKEN = "am-token-7f3c"
STARTED = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def alert(name: str, status: str = "firing", severity: str = "critical", **labels: str) -> dict[str, Any]:
    labels = {"alertname": name, "severity": severity, **labels}
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": f"{name} on {labels.get('service', 'something')}",
            "runbook_url": "https://runbooks/x",
        },
        "startsAt": STARTED.isoformat(),
        "endsAt": (STARTED + timedelta(minutes=9)).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}",
        "fingerprint": f"fp-{name}-{'-'.join(sorted(labels.values()))}"[:60],
    }


def webhook(*alerts: dict[str, Any], group: str = '{}:{alertname="ModelServerDown"}') -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "firebreak",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
async def bot(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    config = tmp_path / "firebreak.yaml"
    config.write_text(
        "alerts:\n  inhibit:\n    - source: {match: {alertname: ClusterDown}}\n"
        "      target: {match_re: {alertname: '.+'}}\n      equal: [cluster]\n"
    )
    async with running(make_settings(slack, redis_url, alerts_token=TOKEN, config_file=config), slack) as h:
        yield h


async def post(bot: Harness, body: Any, token: str | None = TOKEN, raw: bytes | None = None) -> tuple[int, str]:
    assert bot.session is not None
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = io.BytesIO(raw if raw is not None else json.dumps(body).encode())
    async with bot.session.post(f"{bot.url}/alerts/alertmanager", data=data, headers=headers) as resp:
        return resp.status, await resp.text()


async def deliver(bot: Harness, body: Any) -> None:
    status, text = await post(bot, body)
    assert status == 200, text
    await asyncio.sleep(DIGEST_WAIT)  # the storm message is refreshed a second after the alerts
    await bot.settle()


DIGEST_WAIT = 1.2


async def test_refusals_change_nothing(bot: Harness) -> None:
    hook = webhook(alert("ModelServerDown", service="checkout"))
    assert (await post(bot, hook, token=None))[0] == 401
    assert (await post(bot, hook, token="wrong"))[0] == 401
    status, text = await post(bot, {"version": "3", "alerts": []})
    assert status == 400 and "version" in text
    status, text = await post(bot, None, raw=b"{not json")
    assert status == 400
    await bot.settle()
    assert await bot.fb.service.list_open() == []


async def test_an_oversized_body_is_refused_unread(bot: Harness) -> None:
    async with aiohttp.ClientSession() as session:  # its own connection, which the server closes mid-upload
        big = io.BytesIO(b"x" * (4 * 1024 * 1024 + 10))
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        async with session.post(f"{bot.url}/alerts/alertmanager", data=big, headers=headers) as resp:
            assert resp.status == 413
    await asyncio.sleep(0.5)


async def test_endpoint_is_off_without_a_token(slack: SlackStandIn, redis_url: str) -> None:
    async with running(make_settings(slack, redis_url), slack) as h:
        status, text = await post(h, webhook(alert("ModelServerDown")))
        assert status == 404 and "FIREBREAK_ALERTS_TOKEN" in text


async def test_one_incident_per_root_cause_and_repeats_change_nothing(bot: Harness) -> None:
    first = webhook(alert("ModelServerDown", service="checkout", model="llama-70b", cluster="prod"))
    await deliver(bot, first)
    (inc,) = await bot.fb.service.list_open()
    assert inc.severity == 2 and inc.scope == {"service": "checkout", "model": "llama-70b", "cluster": "prod"}
    assert inc.impact_started_at == STARTED and inc.origin is not None and inc.ic is None
    summary = json.dumps(bot.slack.channels[inc.channel_id or ""].messages[0]["blocks"])
    assert "From alert" in summary and "runbooks/x" in summary and "g0.expr=ModelServerDown" in summary
    events = len(await bot.fb.service.timeline(inc.id))

    await deliver(bot, first)  # Alertmanager's repeat_interval resend, or its retry
    assert [i.id for i in await bot.fb.service.list_open()] == [inc.id]
    assert len(await bot.fb.service.timeline(inc.id)) == events

    # Another alert of the same scope, in another group, attaches; another scope opens its own incident.
    same = alert("HighLatency", service="checkout", model="llama-70b", cluster="prod", pod="p-1")
    await deliver(bot, webhook(same, group='{}:{alertname="HighLatency"}'))
    other = alert("ModelServerDown", service="search", cluster="prod")
    await deliver(bot, webhook(other, group='{}:{alertname="ModelServerDown",service="search"}'))
    scopes = sorted(i.scope["service"] for i in await bot.fb.service.list_open())
    assert scopes == ["checkout", "search"]
    names = [e.payload.name for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "alert"]  # type: ignore[union-attr]
    assert names == ["ModelServerDown", "HighLatency"]
    # A warning with no triage channel opens nothing.
    await deliver(bot, webhook(alert("DiskFilling", severity="warning", service="logs"), group="{}:{x}"))
    assert len(await bot.fb.service.list_open()) == 2


async def test_resolved_alerts_go_to_the_timeline_and_the_ic_hears_when_all_are(bot: Harness) -> None:
    a = alert("ModelServerDown", service="checkout", cluster="prod")
    b = alert("HighLatency", service="checkout", cluster="prod")
    await deliver(bot, webhook(a, b))
    (inc,) = await bot.fb.service.list_open()
    await bot.run("ic", user="UALICE", channel=inc.channel_id or "")
    await deliver(bot, webhook({**a, "status": "resolved", "endsAt": (STARTED + timedelta(minutes=9)).isoformat()}, b))
    channel = bot.slack.channels[inc.channel_id or ""]
    assert not [m for m in channel.messages if "every alert resolved" in m.get("text", "")]
    await deliver(bot, webhook({**b, "status": "resolved", "endsAt": (STARTED + timedelta(minutes=9)).isoformat()}))
    told = [m for m in channel.messages if "every alert resolved" in m.get("text", "")]
    assert len(told) == 1 and "<@UALICE>" in told[0]["text"]
    assert (await bot.fb.service.get(inc.id)).is_open, "a person resolves it"
    statuses = [e.payload.status for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "alert"]  # type: ignore[union-attr]
    assert statuses == ["firing", "firing", "resolved", "resolved"]


async def test_alert_quality_inhibition_and_the_storm_message(bot: Harness) -> None:
    down = alert("ClusterDown", cluster="prod", service="platform")
    await deliver(bot, webhook(down, group='{}:{alertname="ClusterDown"}'))
    (inc,) = await bot.fb.service.list_open()
    bare = alert("ModelServerDown", cluster="prod")
    bare["annotations"] = {"summary": "model server down"}
    await deliver(bot, webhook(bare, group='{}:{alertname="ModelServerDown"}'))
    assert len(await bot.fb.service.list_open()) == 1, "explained by ClusterDown: no incident of its own"
    (explained,) = [
        e.payload for e in await bot.fb.service.timeline(inc.id) if getattr(e.payload, "name", "") == "ModelServerDown"
    ]
    assert explained.inhibited_by == "ClusterDown"  # type: ignore[union-attr]
    assert sorted(explained.flags) == ["no runbook_url annotation", "no scope label (service, model, pool)"]  # type: ignore[union-attr]
    channel = bot.slack.channels[inc.channel_id or ""]
    storms = [m for m in channel.messages if "alert(s)* on INC-1" in json.dumps(m.get("blocks"))]
    assert len(storms) == 1, "one storm message, edited in place"
    shown = json.dumps(storms[0]["blocks"])
    assert "2 alert(s)" in shown and "explained by ClusterDown" in shown and "no runbook_url annotation" in shown


async def test_a_burst_of_webhooks_of_one_root_cause_opens_one_incident(bot: Harness) -> None:
    hooks = [
        webhook(alert(f"Symptom{n}", service="checkout", cluster="prod"), group=f'{{}}:{{alertname="Symptom{n}"}}')
        for n in range(12)
    ]
    statuses = await asyncio.gather(*(post(bot, h) for h in hooks))
    assert {s for s, _ in statuses} == {200}
    await asyncio.sleep(DIGEST_WAIT)
    await bot.settle()
    (inc,) = await bot.fb.service.list_open()
    fired = [e for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "alert"]
    assert len(fired) == 12


async def test_triage_offers_a_group_once_then_declare_or_ignore(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    triage = slack.add_channel("triage")
    settings = make_settings(slack, redis_url, alerts_token=TOKEN, triage_channel="#triage")
    async with running(settings, slack) as bot:
        gpu = '{}:{alertname="GPUMemoryHigh"}'
        first = alert("GPUMemoryHigh", severity="warning", service="embeddings", pool="a100")
        second = alert("GPUMemoryHigh", severity="warning", service="embeddings", pool="a100", gpu="3")
        await deliver(bot, webhook(first, group=gpu))
        await deliver(bot, webhook(first, second, group=gpu))
        assert await bot.fb.service.list_open() == []
        (offer,) = triage.messages
        shown = json.dumps(offer["blocks"])
        assert "2 alert(s) in this group" in shown and "fb_triage_declare" in shown and "fb_triage_ignore" in shown

        value = next(e["value"] for b in offer["blocks"] if b["type"] == "actions" for e in b["elements"])
        payload = {
            "channel": {"id": triage.id},
            "message": {"ts": offer["ts"]},
            "trigger_id": "trig-triage-1",
            "response_url": bot.slack.response_url("triage1"),
            "actions": [{"type": "button", "action_id": "fb_triage_declare", "value": value, "action_ts": "1.1"}],
        }
        assert (await bot.interaction("block_actions", user="UBOB", **payload))[0] == 200
        await bot.settle()
        (incident,) = await bot.fb.service.list_open()
        assert incident.ic == "UBOB" and incident.origin is not None and incident.origin.name == "GPUMemoryHigh"
        assert "fb_triage_declare" not in json.dumps(triage.messages[0]["blocks"])
        assert "Declared as INC-1 by <@UBOB>" in json.dumps(triage.messages[0]["blocks"])
        # The other button, pressed late, is told; later alerts of the group join the incident.
        payload["actions"][0]["action_id"] = "fb_triage_ignore"  # type: ignore[index]
        payload["trigger_id"] = "trig-triage-2"
        await bot.interaction("block_actions", user="UCAROL", **payload)
        await bot.settle()
        assert "declared already" in bot.last_reply()
        third = alert("GPUMemoryHigh", severity="warning", service="embeddings", pool="a100", gpu="5")
        await deliver(bot, webhook(third, group=gpu))
        names = [e for e in await bot.fb.service.timeline(incident.id) if e.kind.value == "alert"]
        assert len(names) == 3, "both alerts triaged before the declare, and the one after it"

        # An ignored group is counted in its message and opens nothing.
        disk = '{}:{alertname="DiskFilling"}'
        await deliver(bot, webhook(alert("DiskFilling", severity="warning", service="logs"), group=disk))
        offer2 = triage.messages[1]
        value2 = next(e["value"] for b in offer2["blocks"] if b["type"] == "actions" for e in b["elements"])
        ignore = {**payload, "trigger_id": "trig-triage-3", "message": {"ts": offer2["ts"]}}
        ignore["actions"] = [{"type": "button", "action_id": "fb_triage_ignore", "value": value2, "action_ts": "1.3"}]
        await bot.interaction("block_actions", user="UCAROL", **ignore)
        await bot.settle()
        await deliver(bot, webhook(alert("DiskFilling", severity="warning", service="logs", disk="sdb"), group=disk))
        assert len(triage.messages) == 2 and len(await bot.fb.service.list_open()) == 1
        assert "Ignored by <@UCAROL>" in json.dumps(triage.messages[1]["blocks"])


async def test_nested_scopes_arriving_together_are_one_incident(bot: Harness) -> None:
    model = alert("ModelServerDown", service="checkout", cluster="prod", model="llama-70b")
    service = alert("CheckoutDown", service="checkout", cluster="prod")
    statuses = await asyncio.gather(
        post(bot, webhook(model, group="{}:{a}")), post(bot, webhook(service, group="{}:{b}"))
    )
    assert [s for s, _ in statuses] == [200, 200]
    await asyncio.sleep(DIGEST_WAIT)
    await bot.settle()
    (inc,) = await bot.fb.service.list_open()
    names = sorted(
        getattr(e.payload, "name", "") for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "alert"
    )
    assert names == ["CheckoutDown", "ModelServerDown"]


async def test_a_resolve_that_arrives_before_its_firing_is_not_lost(bot: Harness) -> None:
    a = alert("ModelServerDown", service="checkout", cluster="prod")
    resolved = {**a, "status": "resolved", "endsAt": (STARTED + timedelta(minutes=9)).isoformat()}
    await deliver(bot, webhook(resolved))
    assert await bot.fb.service.list_open() == []
    await bot.run("declare sev2 placeholder", user="UALICE")  # an unrelated incident: the channel count moves on
    await deliver(bot, webhook(a))
    (inc,) = [i for i in await bot.fb.service.list_open() if i.scope]
    statuses = [
        getattr(e.payload, "status", "") for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "alert"
    ]
    assert statuses == ["firing", "resolved"]
    told = [m for m in bot.slack.channels[inc.channel_id or ""].messages if "every alert resolved" in m.get("text", "")]
    assert len(told) == 1, "nothing of it fires any more"


async def test_triage_decisions_race_and_a_resolved_groups_new_round(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    triage = slack.add_channel("triage")
    settings = make_settings(slack, redis_url, alerts_token=TOKEN, triage_channel="#triage")
    async with running(settings, slack) as bot:
        group = '{}:{alertname="QueueBacklog"}'
        await deliver(bot, webhook(alert("QueueBacklog", severity="warning", service="ingest"), group=group))
        (offer,) = triage.messages
        value = next(e["value"] for b in offer["blocks"] if b["type"] == "actions" for e in b["elements"])

        def click(action_id: str, n: int) -> dict[str, Any]:
            return {
                "channel": {"id": triage.id},
                "message": {"ts": offer["ts"]},
                "trigger_id": f"trig-race-{n}",
                "response_url": bot.slack.response_url(f"race{n}"),
                "actions": [{"type": "button", "action_id": action_id, "value": value, "action_ts": f"{n}.1"}],
            }

        await asyncio.gather(
            bot.interaction("block_actions", user="UBOB", **click("fb_triage_declare", 1)),
            bot.interaction("block_actions", user="UCAROL", **click("fb_triage_ignore", 2)),
        )
        await bot.settle()
        shown = json.dumps(triage.messages[0]["blocks"])
        opened = await bot.fb.service.list_open()
        assert ("Declared as INC-1 by <@UBOB>" in shown) == bool(opened), "the message says what was done"
        assert ("Ignored by <@UCAROL>" in shown) == (not opened)
        if not opened:
            return  # ignore won: nothing opens, which is what the message says
        (incident,) = opened
        assert incident.ic == "UBOB"
        # The incident is resolved; the group firing again is offered afresh, with live buttons.
        await bot.run("resolve", channel=incident.channel_id or "")
        again = alert("QueueBacklog", severity="warning", service="ingest", shard="2")
        await deliver(bot, webhook(again, group=group))
        assert len(triage.messages) == 2 and "fb_triage_declare" in json.dumps(triage.messages[1]["blocks"])
