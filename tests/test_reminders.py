"""Status-update reminders as jobs: due when the record says, exactly once across replicas, answered by an update
or a snooze, escalated after misses, nudges for missing roles and forgotten incidents, cancelled by a resolve and
restored by a reopen. Driven through signed requests on a clock the test moves."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.jobs import Op
from bot.models import Actor, Incident
from tests.conftest import make_settings
from tests.harness import FakeClock, Harness, running
from tests.mitigation_driver import buttons, click, text_of
from tests.slack_standin import SlackStandIn

CONFIG = """
reminders:
  repeat_minutes: 10
  escalate_after: 2
  escalation: S0ONCALL
"""


@pytest.fixture
async def bot(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "firebreak.yaml").write_text(CONFIG)
    async with running(make_settings(slack, redis_url, config_file=tmp_path / "firebreak.yaml"), slack) as h:
        yield h


def reminders(bot: Harness, inc: Incident) -> list[dict[str, Any]]:
    """The reminders posted in the channel (by their key: the reminder job's post), answered or not."""
    return [
        m
        for m in bot.slack.channels[inc.channel_id or ""].messages
        if str((m.get("metadata") or {}).get("event_payload", {}).get("key", "")).endswith(":remind")
    ]


def live(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if buttons(m)]


async def declare(bot: Harness, sev: int = 1) -> Incident:
    await bot.run(f"declare sev{sev} Model server OOM", user="UALICE")
    (inc,) = await bot.fb.service.list_open()
    return inc


async def test_due_reminder_then_missed_then_escalated(bot: Harness) -> None:
    inc = await declare(bot)  # SEV1: an update every 30 min
    await bot.advance(minutes=29)
    assert reminders(bot, inc) == []
    await bot.advance(minutes=1, seconds=1)
    (first,) = reminders(bot, inc)
    assert first["text"].startswith("<@UALICE> a status update for INC-1 is due (none has been posted yet)")
    assert set(buttons(first)) == {"fb_post_update", "fb_snooze_0", "fb_snooze_1"}
    await bot.advance(minutes=10)
    first, second = reminders(bot, inc)
    assert buttons(first) == {} and "missed" in text_of(first), "the unanswered one loses its buttons"
    assert "(reminder 2)" in second["text"] and live([second])
    await bot.advance(minutes=10)
    channel = bot.slack.channels[inc.channel_id or ""]
    calls = [m for m in channel.messages if "<!subteam^S0ONCALL>" in m.get("text", "")]
    assert len(calls) == 1 and "2 reminders in a row went unanswered" in calls[0]["text"]
    announce = bot.slack.by_name("incidents")
    assert any("<!subteam^S0ONCALL>" in m.get("text", "") for m in announce.messages if "thread_ts" in m)
    assert len(live(reminders(bot, inc))) == 1, "only the newest reminder has buttons"
    await bot.advance(minutes=10)  # escalated: the next reminder comes at the cadence, not in 10 min
    assert len(reminders(bot, inc)) == 3
    kinds = [e.kind.value for e in await bot.fb.service.timeline(inc.id)]
    assert kinds.count("reminder") == 3 and kinds.count("missed") == 2 and kinds.count("escalated") == 1


async def test_snooze_and_update_answer_the_reminder(bot: Harness) -> None:
    inc = await declare(bot)
    await bot.advance(minutes=31)
    (reminder,) = reminders(bot, inc)
    snooze = buttons(reminder)["fb_snooze_0"]
    assert snooze["value"] == f"{inc.id}:10"
    reply = await click(bot, inc, reminder, "fb_snooze_0", "UBOB")
    assert "Snoozed 10 min" in reply
    (reminder,) = reminders(bot, inc)
    assert buttons(reminder) == {} and "snoozed 10 min by <@UBOB>" in text_of(reminder)
    await bot.advance(minutes=9)
    assert len(reminders(bot, inc)) == 1
    await bot.advance(minutes=1, seconds=1)
    again = reminders(bot, inc)[-1]
    assert len(reminders(bot, inc)) == 2 and "(reminder" not in again["text"], "a snooze ends the streak"

    await click(bot, inc, again, "fb_post_update", "UALICE")
    (opened,) = bot.slack.calls_to("views.open")
    view = opened["view"]
    state = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "identified"}}},
        "text": {"value": {"type": "plain_text_input", "value": "OOM from a batch of 32k-token prompts"}},
        "next": {"value": {"type": "number_input", "value": "20"}},
    }
    status, body = await bot.interaction(
        "view_submission", user="UALICE", view={**view, "id": "V1", "state": {"values": state}}
    )
    assert (status, body) == (200, "")
    await bot.settle()
    incident = await bot.fb.service.get(inc.id)
    assert incident.status.value == "identified" and incident.last_update_at == bot.clock.now
    assert incident.next_update_due is not None and (incident.next_update_due - bot.clock.now).total_seconds() == 1200
    answered = reminders(bot, inc)[1]
    assert buttons(answered) == {} and "answered: <@UALICE> posted an update" in text_of(answered)
    await bot.advance(minutes=19)
    assert len(reminders(bot, inc)) == 2, "the update's own ETA counts"


async def test_resolve_cancels_and_reopen_restores(bot: Harness) -> None:
    inc = await declare(bot)
    await bot.run("resolve fixed", channel=inc.channel_id or "")
    jobs = await bot.fb.redis.zrange("fb:jobs:due", 0, -1)
    assert not [j for j in jobs if str(j).startswith(f"reminder:{inc.id}:")], "no reminder job left"
    await bot.advance(hours=30)
    assert reminders(bot, inc) == []
    await bot.run("reopen", channel=inc.channel_id or "")
    await bot.advance(minutes=31)
    assert len(reminders(bot, inc)) == 1


async def test_severity_change_replans_the_cadence(bot: Harness) -> None:
    inc = await declare(bot, sev=3)  # every 120 min
    await bot.advance(minutes=20)
    await bot.run("sev 1", channel=inc.channel_id or "")  # now every 30 min, from the declare
    await bot.advance(minutes=9)
    assert reminders(bot, inc) == []
    await bot.advance(minutes=2)
    assert len(reminders(bot, inc)) == 1


async def test_exactly_once_across_replicas_and_late_at_start(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "firebreak.yaml").write_text(CONFIG)
    settings = make_settings(slack, redis_url, config_file=tmp_path / "firebreak.yaml")
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(running(settings, slack, clock)) for _ in range(3)]
        first = replicas[0]
        await first.run("declare sev1 Three replicas", user="UALICE")
        (inc,) = await first.fb.service.list_open()
        clock.advance(minutes=31)
        for r in replicas:
            r.fb.worker.wake()
        for r in replicas:
            await r.settle()
        assert len(reminders(first, inc)) == 1, "three replicas, one reminder"
    # Nobody runs while the next one comes due; the replica that starts later posts it once, saying how late.
    clock.advance(minutes=25)
    async with running(settings, slack, clock) as late:
        await late.settle()
        posted = reminders(late, inc)
        assert len(posted) == 2
        assert "15 min late: firebreak was not running" in json.dumps(posted[-1]["blocks"])


async def test_required_role_nudge_then_escalation(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "firebreak.yaml").write_text(CONFIG + "  required_roles: [comms]\n  no_ic_minutes: 5\n")
    settings = make_settings(slack, redis_url, config_file=tmp_path / "firebreak.yaml")
    async with running(settings, slack) as bot:
        inc = await declare(bot, sev=2)
        await bot.advance(minutes=5, seconds=1)
        channel = bot.slack.channels[inc.channel_id or ""]
        assert any("has nobody as comms yet" in m.get("text", "") for m in channel.messages)
        await bot.advance(minutes=5)
        assert any("still nobody is comms" in m.get("text", "") for m in channel.messages)
        await bot.run("role comms <@UBOB>", channel=inc.channel_id or "")
        await bot.advance(minutes=10)
        assert sum("comms" in m.get("text", "") and "nobody" in m.get("text", "") for m in channel.messages) == 2


async def test_a_forgotten_incident_gets_a_daily_nudge(bot: Harness) -> None:
    """The nudge comes at the first 10:00 (UTC, the default team time) after 24 h without activity, then daily;
    the expected moment is worked out from when the test runs, as the clock starts at real now."""
    inc = await declare(bot, sev=4)  # every 4 h; reminders come, but nobody acts
    quiet = inc.declared_at + timedelta(hours=24)
    nudge = quiet.replace(hour=10, minute=0, second=0, microsecond=0)
    if nudge < quiet:
        nudge += timedelta(days=1)
    channel = bot.slack.channels[inc.channel_id or ""]

    def nudges() -> int:
        return sum("is still open, with no activity for" in m.get("text", "") for m in channel.messages)

    async def advance_to(at: datetime) -> None:
        while bot.clock.now < at:  # in steps no longer than the reminders' cadence
            await bot.advance(seconds=min(4 * 3600, (at - bot.clock.now).total_seconds()))

    await advance_to(nudge - timedelta(minutes=1))
    assert nudges() == 0, "not before 10:00 after a quiet day"
    await advance_to(nudge + timedelta(seconds=1))
    assert nudges() == 1, "one nudge"
    await advance_to(nudge + timedelta(hours=23, minutes=59))
    assert nudges() == 1, "once a day"
    await advance_to(nudge + timedelta(days=1, seconds=1))
    assert nudges() == 2, "the next day's"


async def test_slack_failing_delays_the_reminder_but_never_loses_or_doubles_it(bot: Harness) -> None:
    inc = await declare(bot)
    bot.slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=0, times=2)
    bot.slack.fail("chat.postMessage", "internal_error", status=500, times=1)
    await bot.advance(minutes=31)
    assert len(reminders(bot, inc)) == 1
    kinds = [e.kind.value for e in await bot.fb.service.timeline(inc.id)]
    assert kinds.count("reminder") == 1


async def test_a_changed_practice_replans_open_incidents_at_start(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "firebreak.yaml"
    config.write_text(CONFIG)
    clock = FakeClock()
    settings = make_settings(slack, redis_url, config_file=config)
    async with running(settings, slack, clock) as bot:
        inc = await declare(bot)
        await bot.advance(minutes=31)
        assert len(reminders(bot, inc)) == 1
    config.write_text(CONFIG.replace("repeat_minutes: 10", "repeat_minutes: 15"))
    async with running(settings, slack, clock) as bot:
        await bot.settle()
        await bot.advance(minutes=10)
        assert len(reminders(bot, inc)) == 1, "not at the old 10 minutes"
        await bot.advance(minutes=5)
        assert len(reminders(bot, inc)) == 2, "at the new 15 minutes"


async def test_a_reminder_slack_refuses_is_recorded_and_the_next_one_still_comes(bot: Harness) -> None:
    inc = await declare(bot)
    bot.slack.fail("chat.postMessage", "is_archived", times=1)
    await bot.advance(minutes=31)
    assert reminders(bot, inc) == []
    warned = [e for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "warning"]
    assert warned and "Couldn't post a reminder" in warned[-1].payload.text  # type: ignore[union-attr]
    await bot.advance(minutes=10)
    assert len(reminders(bot, inc)) == 1, "the schedule went on"


async def test_a_stale_snooze_button_does_not_undo_an_update(bot: Harness) -> None:
    inc = await declare(bot)
    await bot.advance(minutes=31)
    (reminder,) = reminders(bot, inc)
    await bot.run("update scaled out the decode pool next 60", channel=inc.channel_id or "")
    due = (await bot.fb.service.get(inc.id)).next_update_due
    assert due is not None
    assert f"next update {due:%H:%M} UTC" in bot.slack.channels[inc.channel_id or ""].topic
    reply = await click(bot, inc, reminder, "fb_snooze_0", "UBOB", value=f"{inc.id}:10")
    assert "answered already" in reply
    assert (await bot.fb.service.get(inc.id)).next_update_due == due


async def test_an_incident_nobody_leads_gets_a_nudge_then_the_escalation(bot: Harness) -> None:
    outcome = await bot.fb.service.declare(
        title="Checkout 5xx (from an alert)", actor=Actor.alert("fp-1", "CheckoutErrors"), severity=2, op=Op.fresh()
    )
    inc = outcome.incident
    assert inc.ic is None
    await bot.advance(minutes=5, seconds=1)
    channel = bot.slack.channels[inc.channel_id or ""]
    assert any("has nobody as IC yet" in m.get("text", "") for m in channel.messages)
    await bot.advance(minutes=5)
    assert any(
        "<!subteam^S0ONCALL>" in m.get("text", "") and "still nobody is IC" in m.get("text", "")
        for m in channel.messages
    )
