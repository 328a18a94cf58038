"""Posts and the channel topic, rendered from the facts the core hands over: (fallback text, blocks)."""

from __future__ import annotations

from bot.core.config import IncidentConfig
from bot.models import Incident, Post, PostKind, Reminded, Reopened, Resolved, SeverityChanged, StatusUpdated
from bot.render.blocks import Block, actions, button, context, header, incident_fields, section
from bot.render.mitigations import MITIGATE_ACTION, mitigation_post, result_post
from bot.render.mrkdwn import ago, mention, plain, short, slack_time, user_text
from bot.render.timeline import event_text, who

CLAIM_IC_ACTION = "fb_claim_ic"
TOPIC_LIMIT = 250


def topic(incident: Incident) -> str:
    ic = f"<@{incident.ic}>" if incident.ic else "unassigned"
    flags = "".join(f" | :octagonal_sign: {f.upper()}" for f in incident.flags)
    line = f"{incident.sev_label} | {incident.status.value}{flags} | IC {ic} | {incident.ref} {plain(incident.title)}"
    return line[:TOPIC_LIMIT]


def summary_blocks(incident: Incident) -> list[Block]:
    blocks: list[Block] = [header(f"{incident.ref} · {plain(incident.title)}"), incident_fields(incident)]
    if incident.description:
        blocks.append(section(user_text(incident.description)))
    if incident.resolution:
        blocks.append(section(f"*Resolution:* {user_text(incident.resolution)}"))
    if incident.active:
        lines = "\n".join(f"• *M{a.number}* {a.label}" for a in incident.active)
        blocks.append(section(f"*Mitigations in force* (undo from their result messages)\n{lines}"))
    if incident.is_open:
        blocks.append(
            actions(
                button(CLAIM_IC_ACTION, "I'll be IC", str(incident.id)),
                button(MITIGATE_ACTION, "Mitigate", str(incident.id)),
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


def render_post(post: Post, config: IncidentConfig) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for a post."""
    incident = post.incident
    if post.kind is PostKind.SUMMARY:
        text = f"{short(incident)}: {incident.status.value}, IC <@{incident.ic}>" if incident.ic else short(incident)
        return text, summary_blocks(incident)
    if post.kind is PostKind.ANNOUNCEMENT:
        return announcement(incident)
    if post.kind is PostKind.MITIGATION:
        assert post.mitigation is not None, "a mitigation post shows a request"
        return mitigation_post(incident, post.mitigation)
    if post.kind is PostKind.MITIGATION_RESULT:
        assert post.mitigation is not None, "a result post shows a request"
        return result_post(incident, post.mitigation)
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
    elif isinstance(p, Reopened):
        text = f"{short(incident)} reopened by {who(event.actor)}"
    elif isinstance(p, SeverityChanged):
        verb = "raised" if p.raised else "lowered"
        text = f"{short(incident)}: severity {verb} to *SEV{p.severity}* by {who(event.actor)}"
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
