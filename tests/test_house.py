"""The house holds: every Slack listener comes from the registry, the manifest matches it, sources never become IC,
and records written before events were typed still load."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from bot.core.errors import ConfigError
from bot.models import Actor, Declared, RoleAssigned, SeverityChanged, StatusUpdated
from bot.render.replies import timeline_reply
from handlers import commands
from handlers.registry import HandlerTable, Registry
from handlers.slack import default_registry
from tests.conftest import make_settings, repo_root
from tests.harness import Harness, running
from tests.slack_standin import SlackStandIn


def test_manifest_subscribes_to_exactly_the_events_handled() -> None:
    manifest = yaml.safe_load((repo_root() / "deploy" / "slack-manifest.yaml").read_text())
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    handled = {e.event_type for e in default_registry().events}
    assert subscribed == handled == {"pin_added", "pin_removed", "reaction_added", "reaction_removed"}


def test_registry_refuses_a_name_twice() -> None:
    extra = HandlerTable()

    @extra.subcommand("status", usage="status", summary="again")
    async def status_again(ctx: object, _: object) -> None:
        return None

    with pytest.raises(ValueError, match="subcommand 'status' registered twice"):
        Registry.from_modules([commands]).add(extra)


async def test_an_alert_declares_without_becoming_ic(bot: Harness) -> None:
    alert = Actor.alert("9f3c2e", "KubePodCrashLooping")
    outcome = await bot.fb.service.declare(title="vLLM pods crashlooping", severity=2, actor=alert)
    await bot.settle()
    incident = outcome.incident
    assert incident.ic is None and incident.roles == {} and incident.declared_by == alert
    assert incident.channel_id and bot.slack.calls_to("conversations.invite") == []
    channel = bot.slack.channels[incident.channel_id]
    assert "IC unassigned" in channel.topic
    events = await bot.fb.service.timeline(incident.id)
    assert [type(e.payload) for e in events][:1] == [Declared] and events[0].actor == alert
    assert not [e for e in events if isinstance(e.payload, RoleAssigned)]
    summary = str(channel.messages[0]["blocks"])
    assert "alert KubePodCrashLooping" in summary and "_unassigned_" in summary
    await bot.run("ic", channel=incident.channel_id, user="UCAROL")  # a person takes it
    assert (await bot.fb.service.get(incident.id)).ic == "UCAROL"


async def test_records_written_before_typed_events_still_load(bot: Harness) -> None:
    """A team that ran the first release keeps its incidents: old JSON is read into the typed models."""
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    doc = {
        "id": 7,
        "title": "Old one",
        "severity": 2,
        "status": "identified",
        "declared_by": "UALICE",
        "declared_at": at.isoformat(),
        "roles": {"ic": "UALICE"},
        "channel_id": "COLD",
        "version": 3,
    }
    old_events = [
        {"at": at.isoformat(), "kind": "declared", "text": "Declared SEV2: Old one", "actor": "UALICE", "data": {}},
        {"at": at.isoformat(), "kind": "severity_changed", "text": "Severity raised from SEV3 to SEV2",
         "actor": "UBOB", "data": {"previous": "3", "severity": "2"}},
        {"at": at.isoformat(), "kind": "status_update", "text": "rolled back", "actor": "UALICE",
         "data": {"status": "identified", "next_update_due": at.isoformat()}},
    ]  # fmt: skip
    redis = bot.fb.redis
    await redis.hset("fb:incident:7", mapping={"version": "3", "doc": json.dumps(doc)})
    for e in old_events:
        await redis.xadd("fb:incident:7:timeline", {"e": json.dumps(e)})
    incident = await bot.fb.service.get(7)
    assert incident.declared_by == Actor.user("UALICE") and incident.version == 3
    events = await bot.fb.service.timeline(7)
    assert events[0].payload == Declared(title="Old one", severity=2)
    assert events[1].payload == SeverityChanged(previous=3, severity=2) and events[1].actor == Actor.user("UBOB")
    assert isinstance(events[2].payload, StatusUpdated) and events[2].payload.text == "rolled back"
    rendered = str(timeline_reply(incident, events, "/incident").blocks)
    assert (
        "Severity raised from SEV3 to SEV2 — <@UBOB>" in rendered and "*Update* (identified): rolled back" in rendered
    )


async def test_announce_channel_given_by_name_is_resolved_to_its_id(slack: SlackStandIn, redis_url: str) -> None:
    """chat.update and conversations.info take only ids; `#incidents` must become one before it is used."""
    for n in range(1500):  # a big workspace: the name is on the second page of conversations.list
        slack.add_channel(f"team-{n:04d}")
    late = slack.add_channel("sre-incidents")
    async with running(make_settings(slack, redis_url, announce_channel="#sre-incidents"), slack) as h:
        await h.run("declare sev2 Name not id", user="UALICE")
        (incident,) = await h.fb.service.list_open()
        assert incident.announce_channel == late.id and incident.announce_ts
        await h.run("update identified: bad rollout", channel=incident.channel_id)
        root = next(m for m in late.messages if m["ts"] == incident.announce_ts)
        assert "status identified" in str(root["blocks"]), "the announcement was edited by id"
        assert "Couldn't" not in h.last_reply()
        await h.run("declare sev3 Second one", user="UBOB")
    assert len(slack.calls_to("conversations.list")) == 2, "looked up once, at start: two pages"


async def test_unknown_announce_channel_name_stops_the_start(slack: SlackStandIn, redis_url: str) -> None:
    with pytest.raises(ConfigError, match="FIREBREAK_ANNOUNCE_CHANNEL=#nowhere: Slack has no channel #nowhere"):
        async with running(make_settings(slack, redis_url, announce_channel="#nowhere"), slack):
            pass
