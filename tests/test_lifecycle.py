"""Working an incident from its channel: roles, severity, updates, notes, status, list, timeline, resolve, reopen."""

from __future__ import annotations

from bot.models import Actor, IcHandoff, Incident, StatusUpdated
from tests.harness import Harness


async def declared(bot: Harness, text: str = "declare sev2 API errors", user: str = "UALICE") -> Incident:
    before = {i.id for i in await bot.fb.service.list_open()}
    await bot.run(text, user=user)
    (incident,) = [i for i in await bot.fb.service.list_open() if i.id not in before]
    assert incident.channel_id
    return incident


async def test_ic_handoff_and_roles_follow_topic_and_timeline(bot: Harness) -> None:
    inc = await declared(bot)
    ch = bot.slack.channels[inc.channel_id]  # type: ignore[index]
    await bot.run("ic <@UBOB|bob>", channel=ch.id, user="UALICE")
    assert "IC <@UBOB>" in ch.topic and "UBOB" in ch.members
    assert "<@UBOB> is now IC of INC-1" in bot.last_reply()
    await bot.run("role comms <@UCAROL>", channel=ch.id)
    await bot.run("ic", channel=ch.id, user="UDAVE")  # default: the caller takes over
    incident = await bot.fb.service.get(inc.id)
    assert incident.roles == {"ic": "UDAVE", "comms": "UCAROL"}
    events = [(e.kind.value, e.actor.user_id) for e in await bot.fb.service.timeline(inc.id)]
    assert ("ic_handoff", "UALICE") in events and ("ic_handoff", "UDAVE") in events
    assert ("role_assigned", "UALICE") in events
    handoffs = [e for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "ic_handoff"]
    assert handoffs[-1].payload == IcHandoff(user="UDAVE", previous="UBOB")
    # The summary message is edited to show the current roles.
    summary = next(m for m in ch.messages if m["ts"] == incident.summary_ts)
    assert "comms: <@UCAROL>" in str(summary["blocks"])
    # So is the announcement stakeholders watch: it names the IC of now, not the declarer.
    root = next(m for m in bot.slack.by_name("incidents").messages if m["ts"] == incident.announce_ts)
    assert "IC <@UDAVE>" in str(root["blocks"]) and "UALICE" not in str(root["blocks"])
    # Assigning the same person again changes nothing and posts nothing.
    posts = len(ch.messages)
    await bot.run("ic", channel=ch.id, user="UDAVE")
    assert len(ch.messages) == posts and "already IC" in bot.last_reply()


async def test_severity_change_is_announced_in_thread(bot: Harness) -> None:
    inc = await declared(bot, "declare sev3 Slow dashboards")
    await bot.run("sev 1", channel=inc.channel_id)
    incident = await bot.fb.service.get(inc.id)
    assert incident.severity == 1
    assert bot.slack.channels[inc.channel_id].topic.startswith("SEV1 ")  # type: ignore[index]
    thread = [m for m in bot.slack.by_name("incidents").messages if m.get("thread_ts") == inc.announce_ts]
    assert len(thread) == 1 and "raised to *SEV1*" in thread[0]["text"]
    # Raising severity pulls the next update forward to the SEV1 cadence (30 min).
    assert incident.next_update_due is not None
    assert (incident.next_update_due - bot.clock.now).total_seconds() == 30 * 60


async def test_update_posts_in_channel_and_thread_and_sets_next_due(bot: Harness) -> None:
    inc = await declared(bot)
    ack = await bot.run("update identified: bad config push to ingress; rolling back next 20", channel=inc.channel_id)
    assert ack == {}
    incident = await bot.fb.service.get(inc.id)
    assert incident.status.value == "identified"
    assert incident.next_update_due is not None and incident.last_update_at == bot.clock.now
    assert (incident.next_update_due - bot.clock.now).total_seconds() == 20 * 60
    channel_post = bot.slack.channels[inc.channel_id].messages[-1]  # type: ignore[index]
    assert channel_post["text"] == "INC-1 update: bad config push to ingress; rolling back"
    assert "Next update by" in str(channel_post["blocks"])
    threaded = bot.slack.by_name("incidents").messages[-1]
    assert threaded["thread_ts"] == inc.announce_ts and threaded["text"] == channel_post["text"]
    root = next(m for m in bot.slack.by_name("incidents").messages if m["ts"] == inc.announce_ts)
    assert "status identified" in str(root["blocks"]), "the announcement shows the status the update set"
    due_epoch = int(incident.next_update_due.timestamp())
    assert f"Next one due by <!date^{due_epoch}^" in bot.last_reply()
    (event,) = [e for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "status_update"]
    assert event.actor == Actor.user("UALICE") and isinstance(event.payload, StatusUpdated)
    assert event.payload.status.value == "identified" and event.payload.next_update_due == incident.next_update_due


async def test_update_without_next_uses_severity_cadence(bot: Harness) -> None:
    inc = await declared(bot, "declare sev2 Queue backlog")
    await bot.run("update still investigating", channel=inc.channel_id)
    incident = await bot.fb.service.get(inc.id)
    assert incident.next_update_due is not None
    assert (incident.next_update_due - bot.clock.now).total_seconds() == 60 * 60


async def test_note_status_list_and_timeline(bot: Harness) -> None:
    inc = await declared(bot)
    other = await declared(bot, "declare sev1 Cluster down", user="UBOB")
    await bot.run("note suspect node pool gpu-a100-3", channel=inc.channel_id)
    await bot.run("status", channel=inc.channel_id)
    status = bot.slack.responses[-1]
    assert "*INC-1* · *API errors*" in str(status["blocks"]) and "No status update posted yet" in str(status["blocks"])
    await bot.run("list", channel="CRANDOM")
    listing = str(bot.slack.responses[-1]["blocks"])
    assert listing.index("INC-2") < listing.index("INC-1"), "SEV1 first"
    await bot.run("timeline", channel=inc.channel_id)
    timeline = str(bot.slack.responses[-1]["blocks"])
    assert "*Note:* suspect node pool gpu-a100-3 — <@UALICE>" in timeline
    assert "Declared SEV2: API errors" in timeline
    assert other.id != inc.id


async def test_resolve_and_reopen(bot: Harness) -> None:
    inc = await declared(bot)
    ch = bot.slack.channels[inc.channel_id]  # type: ignore[index]
    await bot.run("resolve rolled back ingress config", channel=ch.id)
    incident = await bot.fb.service.get(inc.id)
    assert incident.status.value == "resolved" and incident.resolution == "rolled back ingress config"
    assert incident.resolved_at == bot.clock.now and incident.next_update_due is None
    assert await bot.fb.service.list_open() == []
    assert "| resolved |" in ch.topic
    root = bot.slack.by_name("incidents").messages[0]
    assert ":white_check_mark:" in str(root["blocks"]), "the announcement itself shows it's resolved"
    await bot.run("resolve", channel=ch.id)
    assert "already resolved" in bot.last_reply()
    await bot.run("update more", channel=ch.id)
    assert "is resolved" in bot.last_reply() and "reopen" in bot.last_reply()
    await bot.run("reopen", channel=ch.id)
    incident = await bot.fb.service.get(inc.id)
    assert incident.status.value == "investigating" and incident.resolved_at is None
    assert [i.id for i in await bot.fb.service.list_open()] == [inc.id]


async def test_commands_elsewhere_name_the_incident(bot: Harness) -> None:
    inc = await declared(bot)
    await bot.run("update INC-1 mitigation applied", channel="CRANDOM")
    await bot.run(f"note <#{inc.channel_id}|{inc.channel_name}> from another channel", channel="CRANDOM")
    await bot.run(f"sev #{inc.channel_name} 1", channel="CRANDOM")
    kinds = [e.kind.value for e in await bot.fb.service.timeline(inc.id)]
    assert {"status_update", "note", "severity_changed"} <= set(kinds)
    ack = await bot.run("status", channel="CRANDOM")
    assert "isn't an incident channel" in ack["text"] and ack["response_type"] == "ephemeral"
    ack = await bot.run("status INC-99", channel="CRANDOM")
    assert "no incident INC-99" in ack["text"]


async def test_help_and_bare_command(bot: Harness) -> None:
    await bot.run("")
    text = bot.last_reply()
    for sub in (
        "declare",
        "ic",
        "role",
        "sev",
        "update",
        "note",
        "status",
        "list",
        "timeline",
        "resolve",
        "reopen",
    ):
        assert f"`/incident {sub}" in text
    assert "sev1" in text and "updates every 30 min" in text


async def test_stale_copies_never_decide_the_outcome(bot: Harness) -> None:
    """Handlers load the incident before the ack; by the time the work runs, someone may have changed it."""
    stale = await declared(bot)
    service = bot.fb.service
    alice, bob = Actor.user("UALICE"), Actor.user("UBOB")
    await service.assign_role(stale, "ic", "UBOB", bob)
    outcome = await service.assign_role(stale, "ic", "UALICE", alice)  # stale copy says Alice is IC already
    assert outcome.changed and (await service.get(stale.id)).ic == "UALICE"
    await service.resolve(stale, "fixed", alice)
    reopened = await service.reopen(stale, bob)  # stale copy says it's still open
    assert reopened.incident.is_open and reopened.incident.version > stale.version
