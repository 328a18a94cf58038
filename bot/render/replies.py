"""Ephemeral replies to the person who asked: outcomes, status, list, timeline and help, as Block Kit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.changes import Outcome
from bot.core.config import IncidentConfig
from bot.models import IC, Incident, TimelineEvent
from bot.render.blocks import Block, chunks, context, incident_fields, section
from bot.render.mrkdwn import mention, slack_time
from bot.render.timeline import event_line, pin_view

TIMELINE_LIMIT = 60


@dataclass(frozen=True)
class Reply:
    """What the person who ran the command sees (ephemeral)."""

    text: str
    blocks: list[dict[str, Any]] | None = None


def warning(text: str) -> Reply:
    return Reply(f":warning: {text}")


def outcome_reply(outcome: Outcome, done: str, unchanged: str) -> Reply:
    text = done if outcome.changed else unchanged
    if outcome.warnings:
        text += "\n" + "\n".join(f":warning: {w}" for w in outcome.warnings)
    return Reply(text)


def declared_reply(outcome: Outcome, config: IncidentConfig, *, from_form: bool = False) -> Reply:
    i = outcome.incident
    handoff = " You're IC." if from_form else f" You're IC; hand off with `{config.command} {IC} @someone`."
    return outcome_reply(
        outcome,
        f":rotating_light: Declared *{i.ref}* ({i.sev_label}) in <#{i.channel_id}>.{handoff}",
        f"You declared *{i.ref}* moments ago: <#{i.channel_id}>. Nothing new was created.",
    )


def declaring_ack(title: str, severity: int | None) -> str:
    sev = f"SEV{severity}" if severity else "an incident"
    return f":hourglass_flowing_sand: Declaring {sev}: *{title}* …"


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
    return Reply(f"{len(incidents)} open incident(s)", chunks(f"*{len(incidents)} open incident(s)*", lines))


def timeline_reply(incident: Incident, events: list[TimelineEvent]) -> Reply:
    pins = pin_view(events)
    shown = events[-TIMELINE_LIMIT:]
    lines = [event_line(e, pins) for e in shown]
    head = f"*Timeline of {incident.ref}* ({len(events)} entries" + (
        f", last {TIMELINE_LIMIT} shown)" if len(events) > TIMELINE_LIMIT else ")"
    )
    return Reply(f"Timeline of {incident.ref}", chunks(head, lines))


def help_reply(usage: str, config: IncidentConfig) -> Reply:
    """`usage` is one line per subcommand, as the handlers' registry renders it for this team's config."""
    sevs = "\n".join(
        f"• *{s.name}* {s.description} (updates every {s.update_every_minutes} min)" for s in config.severities
    )
    roles = ", ".join((IC, *config.roles))
    text = (
        f"*firebreak* runs incidents from Slack.\n{usage}\n\n*Severities*\n{sevs}\n\n"
        f"*Roles* {roles}\nInside an incident channel commands act on that incident; elsewhere name it first, "
        f"right after the subcommand, e.g. `{config.command} status INC-7` or "
        f"`{config.command} update #inc-... <text>`. "
        "Pin a message (or react with :pushpin:) to add it to the timeline."
    )
    return Reply(text, [section(text)])
