"""Pinned messages and :pushpin: reactions join the timeline once, with the message's own timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import Actor, Pinned
from tests.harness import Harness


async def _incident_channel(bot: Harness) -> str:
    await bot.run("declare sev2 Etcd latency")
    (inc,) = await bot.fb.service.list_open()
    assert inc.channel_id
    return inc.channel_id


async def test_pin_added_joins_timeline_with_original_time(bot: Harness) -> None:
    channel_id = await _incident_channel(bot)
    ch = bot.slack.channels[channel_id]
    msg = bot.slack.post_message(ch, "etcd fsync p99 is 800ms on node-7", user="UBOB")
    bot.clock.advance(minutes=30)  # pinned half an hour later
    event = {
        "type": "pin_added",
        "user": "UALICE",
        "channel_id": channel_id,
        "item": {"type": "message", "channel": channel_id, "message": msg, "created_by": "UALICE"},
        "event_ts": "1.0",
    }
    assert await bot.event(event, event_id="Ev1") == 200
    assert await bot.event(event, event_id="Ev1", retry=1) == 200  # Slack retry
    await bot.settle()
    (pin,) = [e for e in await bot.fb.service.timeline(1) if e.kind.value == "pinned"]
    assert pin.payload == Pinned(text="etcd fsync p99 is 800ms on node-7", message_ts=msg["ts"], author="UBOB")
    assert pin.at == datetime.fromtimestamp(float(msg["ts"]), UTC)
    assert pin.actor == Actor.user("UALICE")


async def test_pushpin_reaction_fetches_message_and_dedupes_with_pin(bot: Harness) -> None:
    channel_id = await _incident_channel(bot)
    ch = bot.slack.channels[channel_id]
    msg = bot.slack.post_message(ch, "rolled back deploy api-v42", user="UCAROL")
    reaction = {
        "type": "reaction_added",
        "user": "UBOB",
        "reaction": "pushpin",
        "item_user": "UCAROL",
        "item": {"type": "message", "channel": channel_id, "ts": msg["ts"]},
        "event_ts": "2.0",
    }
    await bot.event(reaction)
    await bot.settle()
    pin = {
        "type": "pin_added",
        "user": "UALICE",
        "channel_id": channel_id,
        "item": {"type": "message", "channel": channel_id, "message": msg},
        "event_ts": "3.0",
    }
    await bot.event(pin)
    await bot.event({**reaction, "reaction": "thumbsup"})
    await bot.settle()
    events = await bot.fb.service.timeline(1)
    pins = [(e.payload.text, e.actor.user_id) for e in events if isinstance(e.payload, Pinned)]
    assert pins == [("rolled back deploy api-v42", "UBOB")]
    assert bot.slack.calls_to("conversations.history")[0]["latest"] == msg["ts"]


async def test_pins_outside_incident_channels_are_ignored(bot: Harness) -> None:
    general = bot.slack.add_channel("general")
    msg = bot.slack.post_message(general, "lunch?", user="UBOB")
    await bot.event(
        {
            "type": "reaction_added",
            "user": "UBOB",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": general.id, "ts": msg["ts"]},
        }
    )
    await bot.settle()
    assert bot.slack.calls_to("conversations.history") == []


async def test_unpin_and_removed_pushpin_mark_the_entry_and_a_repin_brings_it_back(bot: Harness) -> None:
    channel_id = await _incident_channel(bot)
    ch = bot.slack.channels[channel_id]
    msg = bot.slack.post_message(ch, "GPU node gpu-a100-7 XID 79", user="UBOB")
    item = {"type": "message", "channel": channel_id, "message": msg}
    pin = {"type": "pin_added", "user": "UALICE", "channel_id": channel_id, "item": item}
    unpin = {"type": "pin_removed", "user": "UALICE", "channel_id": channel_id, "item": item, "has_pins": False}
    await bot.event(pin)
    await bot.settle()
    bot.clock.advance(minutes=5)
    await bot.event(unpin, event_id="EvUnpin")
    await bot.event(unpin, event_id="EvUnpin", retry=1)  # Slack retry: still one unpin
    await bot.settle()
    await bot.run("timeline", channel=channel_id)
    shown = str(bot.slack.responses[-1]["blocks"])
    assert "*Pinned:* GPU node gpu-a100-7 XID 79 (posted by <@UBOB>) _(unpinned)_" in shown
    assert "*Unpinned:* GPU node gpu-a100-7 XID 79 — <@UALICE>" in shown
    reaction = {"type": "reaction_added", "user": "UCAROL", "reaction": "pushpin", "item": {**item, "ts": msg["ts"]}}
    await bot.event(reaction)  # pinned again, by reaction this time
    await bot.event({**reaction, "type": "reaction_removed", "reaction": "thumbsup"})  # not a pin: ignored
    await bot.settle()
    kinds = [e.kind.value for e in await bot.fb.service.timeline(1) if e.kind.value in ("pinned", "unpinned")]
    assert kinds == ["pinned", "pinned", "unpinned"], "pins sort at the message's time; one unpin between"
    await bot.run("timeline", channel=channel_id)
    assert "_(unpinned)_" not in str(bot.slack.responses[-1]["blocks"]), "pinned again"
    await bot.event({**reaction, "type": "reaction_removed"})
    await bot.settle()
    await bot.run("timeline", channel=channel_id)
    assert "_(unpinned)_" in str(bot.slack.responses[-1]["blocks"])


async def test_a_message_stays_pinned_while_anything_pins_it(bot: Harness) -> None:
    channel_id = await _incident_channel(bot)
    msg = bot.slack.post_message(bot.slack.channels[channel_id], "p99 back under 300ms", user="UBOB")
    item = {"type": "message", "channel": channel_id, "ts": msg["ts"], "message": msg}
    pushpin = {"type": "reaction_added", "user": "UCAROL", "reaction": "pushpin", "item": item}
    for event in (  # seconds apart, as people do it (jobs may run side by side)
        {"type": "pin_added", "user": "UALICE", "channel_id": channel_id, "item": item},
        pushpin,
        {**pushpin, "user": "UDAVE"},
        {**pushpin, "type": "reaction_removed"},  # Carol takes hers back: still pinned
        {"type": "pin_removed", "user": "UALICE", "channel_id": channel_id, "item": item},
    ):
        await bot.event(event)
        await bot.settle()
    kinds = [e.kind.value for e in await bot.fb.service.timeline(1) if e.kind.value in ("pinned", "unpinned")]
    assert kinds == ["pinned"], "Dave's :pushpin: still holds it"
    await bot.event({**pushpin, "type": "reaction_removed", "user": "UDAVE"})
    await bot.settle()
    kinds = [e.kind.value for e in await bot.fb.service.timeline(1) if e.kind.value in ("pinned", "unpinned")]
    assert sorted(kinds) == ["pinned", "unpinned"], "the last thing holding it let go"
