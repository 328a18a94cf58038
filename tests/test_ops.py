"""Operating firebreak: probes, metrics, reminders, restarts, the embedded Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.models import IcHandoff, NoteAdded
from bot.render.timeline import event_text
from bot.root.settings import Settings
from tests.conftest import make_settings
from tests.harness import Harness, running
from tests.slack_standin import SlackStandIn


async def test_healthz_readyz_metrics(bot: Harness) -> None:
    assert await bot.get("/healthz") == (200, '{"status": "ok"}')
    assert (await bot.get("/readyz"))[0] == 200
    await bot.run("declare sev1 Everything is on fire")
    status, text = await bot.get("/metrics")
    assert status == 200
    assert 'firebreak_incidents_declared_total{severity="1"} 1.0' in text
    assert 'firebreak_slack_requests_total{kind="command",status="200"} 1.0' in text
    assert "firebreak_ack_seconds_bucket" in text
    assert 'firebreak_commands_total{outcome="ok",subcommand="declare"} 1.0' in text


async def test_readyz_fails_when_redis_is_unreachable(slack: SlackStandIn, tmp_path: Path) -> None:
    async with running(make_settings(slack, f"unix://{tmp_path}/nothing-here.sock"), slack) as h:
        status, body = await h.get("/readyz")
        assert status == 503 and '"status": "unavailable"' in body
        assert (await h.get("/healthz"))[0] == 200


async def test_restart_loses_nothing(settings: Settings, slack: SlackStandIn) -> None:
    async with running(settings, slack) as first:
        await first.run("declare sev2 Node pool drain stuck", user="UALICE")
        (inc,) = await first.fb.service.list_open()
        await first.run("note PDB blocks eviction", channel=inc.channel_id)

    async with running(settings, slack) as second:
        await second.run("update PDB relaxed, drain progressing next 15", channel=inc.channel_id)
        incident = await second.fb.service.get(inc.id)
        assert incident.summary_ts == inc.summary_ts and incident.version > inc.version
        kinds = [e.kind.value for e in await second.fb.service.timeline(inc.id)]
        assert kinds[-2:] == ["note", "status_update"]
        await second.run("declare sev3 Another one")
        assert {i.ref for i in await second.fb.service.list_open()} == {"INC-1", "INC-2"}


async def test_embedded_redis_keeps_state_across_restarts(slack: SlackStandIn, tmp_path: Path) -> None:
    settings = make_settings(slack, None, data_dir=tmp_path / "data")
    async with running(settings, slack) as first:
        assert first.fb.embedded is not None
        await first.run("declare sev2 Embedded state")

    async with running(settings, slack) as second:
        (incident,) = await second.fb.service.list_open()
        assert incident.title == "Embedded state" and incident.channel_id
    assert (tmp_path / "data").is_dir()


async def test_concurrent_changes_all_land(bot: Harness) -> None:
    await bot.run("declare sev2 Contended incident")
    (inc,) = await bot.fb.service.list_open()
    assert inc.channel_id
    notes = [bot.command(f"note observation {n}", channel=inc.channel_id) for n in range(30)]
    handoffs = [bot.command("ic", user=f"U{n:03d}", channel=inc.channel_id) for n in range(10)]
    await asyncio.gather(*notes, *handoffs, bot.command("sev 1", channel=inc.channel_id))
    await bot.settle()
    events = await bot.fb.service.timeline(inc.id)
    notes_logged = [e.payload.text for e in events if isinstance(e.payload, NoteAdded)]
    assert sorted(notes_logged) == sorted(f"observation {n}" for n in range(30))
    incident = await bot.fb.service.get(inc.id)
    assert incident.severity == 1
    handoffs_logged = [e for e in events if isinstance(e.payload, IcHandoff)]
    assert incident.ic in {f"U{n:03d}" for n in range(10)}
    last = handoffs_logged[-1].payload
    assert isinstance(last, IcHandoff) and last.user == incident.ic, "the record and its timeline agree on who won"
    posted = [m.get("text", "") for m in bot.slack.channels[inc.channel_id].messages]
    assert not [t for t in posted if t.startswith("observation")], "notes stay in the timeline, not the channel"
    announced = sorted(t for t in posted if "handed off" in t)
    assert announced == sorted(event_text(e) for e in handoffs_logged), "each handoff is announced with its own text"
    assert bot.slack.channels[inc.channel_id].topic.startswith("SEV1 ")


async def test_store_outage_before_ack_is_an_ephemeral_message(slack: SlackStandIn, tmp_path: Path) -> None:
    async with running(make_settings(slack, f"unix://{tmp_path}/gone.sock"), slack) as h:
        ack = await h.run("declare sev1 Redis is down too")
        assert ack["response_type"] == "ephemeral" and "can't reach its database" in ack["text"]
