"""Ephemeral replies: status, list, timeline and help, rendered as Block Kit."""

from __future__ import annotations

from bot.adapters.slack_blocks import Block, context, incident_fields, mention, section, slack_time
from bot.config import IncidentConfig
from bot.models import EventKind, Incident, TimelineEvent
from handlers.registry import Registry, Reply

EVENT_EMOJI = {
    EventKind.DECLARED: ":rotating_light:",
    EventKind.CHANNEL_CREATED: ":hash:",
    EventKind.ROLE_ASSIGNED: ":bust_in_silhouette:",
    EventKind.IC_HANDOFF: ":arrows_counterclockwise:",
    EventKind.SEVERITY_CHANGED: ":chart_with_upwards_trend:",
    EventKind.STATUS_UPDATE: ":memo:",
    EventKind.NOTE: ":spiral_note_pad:",
    EventKind.PINNED: ":pushpin:",
    EventKind.RESOLVED: ":white_check_mark:",
    EventKind.REOPENED: ":leftwards_arrow_with_hook:",
    EventKind.REMINDER: ":alarm_clock:",
    EventKind.WARNING: ":warning:",
}
TIMELINE_LIMIT = 60


def status_reply(incident: Incident) -> Reply:
    where = f" in <#{incident.channel_id}>" if incident.channel_id else ""
    blocks: list[Block] = [
        section(f"*{incident.ref}* · *{incident.title}*{where}"),
        incident_fields(incident),
    ]
    if incident.last_update_at:
        blocks.append(context(f"Last status update {slack_time(incident.last_update_at)}"))
    elif incident.is_open:
        blocks.append(context("No status update posted yet"))
    return Reply(f"{incident.ref} {incident.sev_label} {incident.status.value}: {incident.title}", blocks)


def list_reply(incidents: list[Incident], command: str) -> Reply:
    if not incidents:
        return Reply(f"No open incidents. Declare one with `{command} declare <title>`.")
    lines = [
        f"*{i.ref}* {i.sev_label} · {i.status.value} · "
        + (f"<#{i.channel_id}>" if i.channel_id else "_no channel_")
        + f" · IC {mention(i.ic)} · {i.title} · since {slack_time(i.declared_at)}"
        for i in incidents
    ]
    return Reply(f"{len(incidents)} open incident(s)", _chunks(f"*{len(incidents)} open incident(s)*", lines))


def event_line(e: TimelineEvent) -> str:
    """One timeline line; updates, notes and pins say what they are, since their text is the person's own."""
    if e.kind is EventKind.STATUS_UPDATE:
        text = f"*Update* ({e.data.get('status', '?')}): {e.text}"
    elif e.kind is EventKind.NOTE:
        text = f"*Note:* {e.text}"
    elif e.kind is EventKind.PINNED:
        author = f" (posted by {mention(e.data['author'])})" if "author" in e.data else ""
        text = f"*Pinned:* {e.text}{author}"
    else:
        text = e.text
    by = f" — {mention(e.actor)}" if e.actor else ""
    return f"{slack_time(e.at)} {EVENT_EMOJI.get(e.kind, '•')} {text}{by}"


def timeline_reply(incident: Incident, events: list[TimelineEvent]) -> Reply:
    shown = events[-TIMELINE_LIMIT:]
    lines = [event_line(e) for e in shown]
    head = f"*Timeline of {incident.ref}* ({len(events)} entries" + (
        f", last {TIMELINE_LIMIT} shown)" if len(events) > TIMELINE_LIMIT else ")"
    )
    return Reply(f"Timeline of {incident.ref}", _chunks(head, lines))


def help_reply(registry: Registry, config: IncidentConfig) -> Reply:
    sevs = "\n".join(
        f"• *{s.name}* {s.description} (updates every {s.update_every_minutes} min)" for s in config.severities
    )
    roles = ", ".join(("ic", *config.roles))
    text = (
        f"*firebreak* runs incidents from Slack.\n{registry.usage(config)}\n\n*Severities*\n{sevs}\n\n"
        f"*Roles* {roles}\nInside an incident channel commands act on that incident; elsewhere name it first, "
        f"right after the subcommand, e.g. `{config.command} status INC-7` or "
        f"`{config.command} update #inc-... <text>`. "
        "Pin a message (or react with :pushpin:) to add it to the timeline."
    )
    return Reply(text, [section(text)])


def _chunks(head: str, lines: list[str]) -> list[Block]:
    """Section blocks under Slack's 3000-character limit each."""
    blocks, current = [section(head)], ""
    for line in lines:
        if len(current) + len(line) + 1 > 2900:
            blocks.append(section(current))
            current = ""
        current += line + "\n"
    if current:
        blocks.append(section(current))
    return blocks
