"""Block Kit building blocks, kept inside Slack's documented size limits."""

from __future__ import annotations

from typing import Any

from bot.models import IC, Incident
from bot.render.mrkdwn import mention, slack_time

Block = dict[str, Any]
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
STATUS_EMOJI = {
    "investigating": ":mag:",
    "identified": ":bulb:",
    "monitoring": ":eyes:",
    "resolved": ":white_check_mark:",
}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:HEADER_LIMIT]}}


def button(action_id: str, text: str, value: str) -> Block:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


def numbered(action_id: str, i: int) -> str:
    """The id of the i-th of a block's buttons answered by one handler (`fb_snooze_1`): Slack refuses a block
    holding two buttons with one action_id. The handler registers them all (HandlerTable.action's `numbered`)."""
    return f"{action_id}_{i}"


def numbered_ids(action_id: str, count: int) -> tuple[str, ...]:
    """`action_id` itself (buttons posted before they were numbered) and its first `count` numbered ids."""
    return (action_id, *(numbered(action_id, i) for i in range(count)))


def actions(*elements: Block) -> Block:
    return {"type": "actions", "elements": list(elements)}


def incident_fields(incident: Incident) -> Block:
    roles = ", ".join(f"{role}: {mention(user)}" for role, user in sorted(incident.roles.items()) if role != IC)
    fields = [
        f"*Severity*\n{incident.sev_label}",
        f"*Status*\n{STATUS_EMOJI.get(incident.status.value, '')} {incident.status.value}",
        f"*Incident commander*\n{mention(incident.ic)}",
        f"*Declared*\n{slack_time(incident.declared_at)} by {declarer(incident)}",
    ]
    if roles:
        fields.append(f"*Roles*\n{roles}")
    if incident.is_open and incident.next_update_due:
        fields.append(f"*Next update due*\n{slack_time(incident.next_update_due)}")
    if incident.resolved_at:
        fields.append(f"*Resolved*\n{slack_time(incident.resolved_at)}")
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f[:FIELD_LIMIT]} for f in fields]}


def declarer(incident: Incident) -> str:
    who = incident.declared_by
    return mention(who.user_id) if who.is_person else f"{who.kind.value} {who.name or who.id}".strip()


MESSAGE_TEXT_BUDGET = 10_000
"""Text across all blocks of one reply: Slack refuses messages past roughly 12k (msg_blocks_too_long)."""
LINE_LIMIT = 600


def clip(line: str, limit: int = LINE_LIMIT) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fitting(lines: list[str], budget: int = MESSAGE_TEXT_BUDGET - 500) -> list[str]:
    """The lines, from the first on, that fit one message (each clipped to a readable length)."""
    kept: list[str] = []
    size = 0
    for line in (clip(x) for x in lines):
        if kept and size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    return kept


def pages(lines: list[str], budget: int = MESSAGE_TEXT_BUDGET - 500) -> list[list[str]]:
    """Lines split into pages that each fit one message, counted from the newest (last) line back:
    page 1 is the most recent. Each page keeps its lines in their original order."""
    result: list[list[str]] = []
    rest = lines
    while rest:
        page = fitting(rest[::-1], budget)[::-1]
        result.append(page)
        rest = rest[: len(rest) - len(page)]
    return result


def chunks(head: str, lines: list[str]) -> list[Block]:
    """Section blocks under Slack's 3000-character limit each."""
    blocks, current = [section(head)], ""
    for line in lines:
        if len(current) + len(line) + 1 > SECTION_LIMIT - 100:
            blocks.append(section(current))
            current = ""
        current += line + "\n"
    if current:
        blocks.append(section(current))
    return blocks
