"""Posts and the channel topic, rendered from the facts the core hands over: (fallback text, blocks)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.config import IncidentConfig
from bot.models import (
    Escalated,
    Incident,
    Missed,
    Nudged,
    Post,
    PostKind,
    Reminded,
    Reopened,
    Resolved,
    SeverityChanged,
    Snoozed,
    StatusUpdated,
    TimelineEvent,
)
from bot.render.blocks import Block, actions, button, context, header, incident_fields, numbered, section
from bot.render.chart import with_chart
from bot.render.evidence import EVIDENCE_ACTION, evidence_post
from bot.render.mitigations import MITIGATE_ACTION, mitigation_post, result_post
from bot.render.mrkdwn import ago, escape, mention, plain, short, slack_time, user_text
from bot.render.timeline import event_text, who

CLAIM_IC_ACTION = "fb_claim_ic"
POST_UPDATE_ACTION = "fb_post_update"
SNOOZE_ACTION = "fb_snooze"
SNOOZE_BUTTONS = 3
"""A reminder's snooze buttons, numbered (`fb_snooze_0`, `_1`, ...)."""


TOPIC_LIMIT = 250


def topic(incident: Incident) -> str:
    ic = f"<@{incident.ic}>" if incident.ic else "unassigned"
    flags = "".join(f" | :octagonal_sign: {f.upper()}" for f in incident.flags)
    due = (
        f" | next update {incident.next_update_due:%H:%M} UTC" if incident.is_open and incident.next_update_due else ""
    )
    line = (
        f"{incident.sev_label} | {incident.status.value}{flags} | IC {ic}{due} | {incident.ref} {plain(incident.title)}"
    )
    return line[:TOPIC_LIMIT]


def origin_block(incident: Incident) -> Block:
    """The alert the incident was declared from, with its links, and since when users are affected."""
    o = incident.origin
    assert o is not None
    links = [
        f"<{u}|{label}>"
        for label, u in (("source", o.generator_url), ("runbook", o.runbook_url), ("dashboard", o.dashboard_url))
        if u
    ]
    scope = ", ".join(f"{k}={plain(v)}" for k, v in sorted(incident.scope.items()))
    text = f"*From alert* `{plain(o.name)}`: {plain(o.summary)}" + (f" · {scope}" if scope else "")
    text += f"\nImpact since {slack_time(o.starts_at)}" + (" · " + " · ".join(links) if links else "")
    return section(text)


def summary_blocks(incident: Incident) -> list[Block]:
    blocks: list[Block] = [header(f"{incident.ref} · {plain(incident.title)}"), incident_fields(incident)]
    if incident.description:
        blocks.append(section(user_text(incident.description)))
    if incident.resolution:
        blocks.append(section(f"*Resolution:* {user_text(incident.resolution)}"))
    if incident.origin is not None:
        blocks.append(origin_block(incident))
    if incident.active:
        lines = "\n".join(f"• *M{a.number}* {a.label}" for a in incident.active)
        blocks.append(section(f"*Mitigations in force* (undo from their result messages)\n{lines}"))
    if incident.is_open:
        blocks.append(
            actions(
                button(CLAIM_IC_ACTION, "I'll be IC", str(incident.id)),
                button(MITIGATE_ACTION, "Mitigate", str(incident.id)),
                button(EVIDENCE_ACTION, "Evidence", str(incident.id)),
            )
        )
    return blocks


def announcement(incident: Incident) -> tuple[str, list[Block]]:
    icon = ":rotating_light:" if incident.is_open else ":white_check_mark:"
    verb = "declared" if incident.is_open else "resolved"
    state = f"{verb} {slack_time(incident.resolved_at)}" if incident.resolved_at and not incident.is_open else verb
    link = f"<#{incident.channel_id}>" if incident.channel_id else ""
    where = f"Join {link}" if link else ""
    text = f"{short(incident)} {verb}" + (f" in {link}" if link else "")
    blocks = [
        section(f"{icon} *{incident.ref}* ({incident.sev_label}) *{user_text(incident.title)}* {state}"),
        context(f"IC {mention(incident.ic)} · status {incident.status.value} · {where} · updates in this thread"),
    ]
    return text, blocks


def reminder(post: Post, config: IncidentConfig) -> tuple[str, list[Block]]:
    """The reminder with its buttons; once answered (an update, a snooze, the next reminder, the resolve) it
    says what answered it and has no buttons left."""
    incident = post.incident
    if post.answer is not None:
        answer = post.answer
        text = f":alarm_clock: ~Status update reminder for {incident.ref}~ · {answered_text(answer)}"
        return text, [context(text)]
    assert post.event is not None and isinstance(post.event.payload, Reminded), "a reminder tells a Reminded"
    event, p = post.event, post.event.payload
    since = f"the last one was {ago(event.at - p.last_update_at)} ago" if p.last_update_at else None
    addressee = f"<@{p.ic}>" if p.ic else "Nobody is IC! Whoever can:"
    nth = f" (reminder {p.number})" if p.number > 1 else ""
    text = (
        f"{addressee} a status update for {incident.ref} is due{nth} ({since or 'none has been posted yet'}). "
        f"Post one with `{config.command} update <what changed> [next <minutes>]` or the button."
    )
    blocks: list[Block] = [section(f":alarm_clock: {text}")]
    if p.late_seconds >= config.reminders.late_seconds:
        late = ago(timedelta(seconds=p.late_seconds))
        blocks.append(context(f"This reminder is {late} late: firebreak was not running when it came due."))
    snoozes = [
        button(numbered(SNOOZE_ACTION, i), f"Snooze {m} min", f"{incident.id}:{m}")
        for i, m in enumerate(config.reminders.snooze_minutes[:SNOOZE_BUTTONS])
    ]
    blocks.append(
        actions({**button(POST_UPDATE_ACTION, "Post update", str(incident.id)), "style": "primary"}, *snoozes)
    )
    return text, blocks


STORM_LINES = 20


def storm(post: Post) -> tuple[str, list[Block]]:
    """The incident's alerts counted by name and scope (and what they lack), in one message edited in place."""
    counts = post.counts or {}
    flags = {k.removeprefix("lacks: "): n for k, n in counts.items() if k.startswith("lacks: ")}
    alerts = sorted(((n, k) for k, n in counts.items() if not k.startswith("lacks: ")), reverse=True)
    total = sum(n for n, _ in alerts)
    lines = [f"• {n} x {plain(k)}" for n, k in alerts[:STORM_LINES]]
    if len(alerts) > STORM_LINES:
        lines.append(f"• …and {len(alerts) - STORM_LINES} more kinds")
    blocks: list[Block] = [section(f":rotating_light: *{total} alert(s)* on {post.incident.ref}\n" + "\n".join(lines))]
    if flags:
        lacking = "; ".join(f"{n} with {flag}" for flag, n in sorted(flags.items()))
        blocks.append(context(f":warning: These alerts lack what good alerts carry: {lacking}."))
    blocks.append(context("Every alert is in the timeline (`/incident timeline`)."))
    return f"{post.incident.ref}: {total} alert(s)", blocks


def answered_text(answer: TimelineEvent) -> str:
    p = answer.payload
    if isinstance(p, StatusUpdated):
        return f"answered: {who(answer.actor)} posted an update {slack_time(answer.at)}"
    if isinstance(p, Snoozed):
        return f"snoozed {p.minutes} min by {who(answer.actor)}; next update by {slack_time(p.until)}"
    if isinstance(p, Missed):
        return f"missed: no update came by {slack_time(answer.at)}"
    if isinstance(p, Resolved):
        return f"the incident was resolved by {who(answer.actor)}"
    return event_text(answer)


def _target(target: str | None) -> str:
    if target is None:
        return "Attention:"
    return f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"


def render_post(post: Post, config: IncidentConfig) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for a post."""
    incident = post.incident
    if post.kind is PostKind.SUMMARY:
        text = f"{short(incident)}: {incident.status.value}, IC <@{incident.ic}>" if incident.ic else short(incident)
        return text, summary_blocks(incident)
    if post.kind is PostKind.ANNOUNCEMENT:
        return announcement(incident)
    if post.kind is PostKind.REMINDER:
        return reminder(post, config)
    if post.kind is PostKind.ALERTS:
        return storm(post)
    if post.kind is PostKind.MITIGATION:
        assert post.mitigation is not None, "a mitigation post shows a request"
        return mitigation_post(incident, post.mitigation)
    if post.kind is PostKind.MITIGATION_RESULT:
        assert post.mitigation is not None, "a result post shows a request"
        return result_post(incident, post.mitigation)
    if post.kind is PostKind.EVIDENCE:
        assert post.evidence is not None, "an evidence post shows evidence"
        return with_chart(evidence_post(incident, post.evidence), post.evidence)
    assert post.event is not None, "an event post tells an event"
    event, p = post.event, post.event.payload
    if isinstance(p, StatusUpdated):
        head = f":memo: *Status update* · {incident.ref} ({incident.sev_label}) · {p.status.value}"
        due = context(f"Next update by {slack_time(p.next_update_due)} · IC {mention(incident.ic)}")
        text = user_text(p.text)
        return f"{incident.ref} update: {text}", [section(head), section(text), due]
    icon = ":information_source:"
    if isinstance(p, Resolved):
        icon = ":white_check_mark:"
        summary = f": {user_text(p.summary)}" if p.summary else ""
        text = f"{short(incident)} resolved by {who(event.actor)}{summary}"
        if p.overridden:
            text += f"\n:warning: Resolved anyway, over: {escape('; '.join(p.overridden))}"
    elif isinstance(p, Reopened):
        text = f"{short(incident)} reopened by {who(event.actor)}"
    elif isinstance(p, SeverityChanged):
        verb = "raised" if p.raised else "lowered"
        text = f"{short(incident)}: severity {verb} to *SEV{p.severity}* by {who(event.actor)}"
    elif isinstance(p, Escalated):
        icon = ":rotating_light:"
        target = _target(p.target)
        text = f"{target} {incident.ref} ({incident.sev_label}) needs you: {p.reason}. IC {mention(incident.ic)}."
    elif isinstance(p, Nudged):
        icon = ":wave:"
        if p.roles:
            claim = " or press *I'll be IC* on the summary" if "ic" in p.roles else ""
            roles = ", ".join("IC" if r == "ic" else r for r in p.roles)
            text = (
                f"{incident.ref} has nobody as {roles} yet. Take it with `{config.command} ic` / "
                f"`{config.command} role <role> @someone`{claim}."
            )
        else:
            cmd = config.command
            ic = f"<@{incident.ic}> " if incident.ic else ""
            text = f"{ic}{incident.ref} is still open, with {p.reason}: post `{cmd} update`, or `{cmd} resolve` it."
            if p.reason == "every alert resolved":
                text += " Check the user-facing signals first: the alerts going quiet is not the users' view."
    elif isinstance(p, Reminded):
        icon = ":alarm_clock:"
        since = f"the last one was {ago(event.at - p.last_update_at)} ago" if p.last_update_at else None
        addressee = f"<@{p.ic}>" if p.ic else "Nobody is IC! Whoever can:"
        text = (
            f"{addressee} a status update for {incident.ref} is due ({since or 'none has been posted yet'}). "
            f"Post one with `{config.command} update <what changed> [next <minutes>]`."
        )
    else:
        text = event_text(event)
    return text, [section(f"{icon} {text}")]
