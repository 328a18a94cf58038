"""Block Kit for what firebreak posts: one function per kind of post, built from the incident record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.models import Incident, Post, PostKind

Block = dict[str, Any]
CLAIM_IC_ACTION = "fb_claim_ic"
STATUS_EMOJI = {
    "investigating": ":mag:",
    "identified": ":bulb:",
    "monitoring": ":eyes:",
    "resolved": ":white_check_mark:",
}


def slack_time(when: datetime) -> str:
    """A timestamp each reader sees in their own timezone, with a UTC fallback."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def mention(user: str | None) -> str:
    return f"<@{user}>" if user else "_unassigned_"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def incident_fields(incident: Incident) -> Block:
    roles = ", ".join(f"{role}: {mention(user)}" for role, user in sorted(incident.roles.items()) if role != "ic")
    fields = [
        f"*Severity*\n{incident.sev_label}",
        f"*Status*\n{STATUS_EMOJI.get(incident.status.value, '')} {incident.status.value}",
        f"*Incident commander*\n{mention(incident.ic)}",
        f"*Declared*\n{slack_time(incident.declared_at)} by {mention(incident.declared_by)}",
    ]
    if roles:
        fields.append(f"*Roles*\n{roles}")
    if incident.is_open and incident.next_update_due:
        fields.append(f"*Next update due*\n{slack_time(incident.next_update_due)}")
    if incident.resolved_at:
        fields.append(f"*Resolved*\n{slack_time(incident.resolved_at)}")
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f[:2000]} for f in fields]}


def summary_blocks(incident: Incident) -> list[Block]:
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{incident.ref} · {incident.title}"[:150]},
        },
        incident_fields(incident),
    ]
    if incident.description:
        blocks.append(section(incident.description))
    if incident.resolution:
        blocks.append(section(f"*Resolution:* {incident.resolution}"))
    if incident.is_open:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": CLAIM_IC_ACTION,
                        "text": {"type": "plain_text", "text": "I'll be IC"},
                        "value": str(incident.id),
                    }
                ],
            }
        )
    return blocks


def announcement_blocks(incident: Incident) -> list[Block]:
    icon = ":rotating_light:" if incident.is_open else ":white_check_mark:"
    state = (
        "declared"
        if incident.is_open
        else f"resolved {slack_time(incident.resolved_at)}"
        if incident.resolved_at
        else "resolved"
    )
    where = f"Join <#{incident.channel_id}>" if incident.channel_id else ""
    return [
        section(f"{icon} *{incident.ref}* ({incident.sev_label}) *{incident.title}* {state}"),
        context(f"IC {mention(incident.ic)} · status {incident.status.value} · {where} · updates in this thread"),
    ]


def render(post: Post) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for a post."""
    incident = post.incident
    if post.kind is PostKind.SUMMARY:
        return post.text, summary_blocks(incident)
    if post.kind is PostKind.ANNOUNCEMENT and post.thread_ts is None:
        return post.text, announcement_blocks(incident)
    if post.kind is PostKind.UPDATE:
        head = f":memo: *Status update* · {incident.ref} ({incident.sev_label}) · {incident.status.value}"
        blocks = [section(head), section(post.text)]
        if post.next_update_due:
            blocks.append(context(f"Next update by {slack_time(post.next_update_due)} · IC {mention(incident.ic)}"))
        return f"{incident.ref} update: {post.text}", blocks
    icon = {PostKind.REMINDER: ":alarm_clock:", PostKind.RESOLVED: ":white_check_mark:"}.get(
        post.kind, ":information_source:"
    )
    return post.text, [section(f"{icon} {post.text}")]
