"""Ephemeral replies to the person who asked: outcomes, status, list, timeline and help, as Block Kit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.changes import Outcome
from bot.core.config import IncidentConfig
from bot.models import IC, Incident, TimelineEvent
from bot.render.blocks import Block, chunks, context, fitting, incident_fields, pages, section
from bot.render.mrkdwn import mention, slack_time, user_text
from bot.render.timeline import calls_line, event_line, folded, pin_view


@dataclass(frozen=True)
class Reply:
    """What the person who ran the command sees (ephemeral)."""

    text: str
    blocks: list[dict[str, Any]] | None = None
    replace: bool = False
    """Edit the message whose button was clicked instead of sending a new one (a step of `/incident guide`)."""


def warning(text: str) -> Reply:
    return Reply(f":warning: {text}")


def internal_error(name: str) -> Reply:
    return Reply(
        f":x: firebreak hit an internal error while running `{name}`. The incident record is safe; "
        "try again, and if it repeats ask your firebreak admin to check the bot's logs."
    )


def still_trying(name: str, reason: str) -> Reply:
    return Reply(
        f":hourglass_flowing_sand: `{name}` is recorded but Slack keeps failing ({reason}). "
        "firebreak keeps trying and finishes it as soon as Slack answers; there is no need to repeat it."
    )


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
        f"You declared *{i.ref}* moments ago: "
        + (f"<#{i.channel_id}>." if i.channel_id else "its channel is being set up right now.")
        + " Nothing new was created.",
    )


def declaring_ack(title: str, severity: int | None) -> str:
    sev = f"SEV{severity}" if severity else "an incident"
    return f":hourglass_flowing_sand: Declaring {sev}: *{user_text(title)}* …"


def status_reply(incident: Incident) -> Reply:
    where = f" in <#{incident.channel_id}>" if incident.channel_id else ""
    blocks: list[Block] = [
        section(f"*{incident.ref}* · *{user_text(incident.title)}*{where}"),
        incident_fields(incident),
    ]
    if incident.last_update_at:
        blocks.append(context(f"Last status update {slack_time(incident.last_update_at)}"))
    elif incident.is_open:
        blocks.append(context("No status update posted yet"))
    return Reply(f"{incident.ref} {incident.sev_label} {incident.status.value}: {user_text(incident.title)}", blocks)


def list_reply(incidents: list[Incident], command: str) -> Reply:
    if not incidents:
        return Reply(f"No open incidents. Declare one with `{command} declare <title>`.")
    lines = [
        f"*{i.ref}* {i.sev_label} · {i.status.value} · "
        + (f"<#{i.channel_id}>" if i.channel_id else "_no channel_")
        + f" · IC {mention(i.ic)} · {user_text(i.title)} · since {slack_time(i.declared_at)}"
        for i in incidents
    ]
    # Most severe first; what doesn't fit one message is counted, not cut off silently.
    fits = fitting(lines)
    blocks = chunks(f"*{len(incidents)} open incident(s)*", fits)
    if len(fits) < len(lines):
        rest = len(lines) - len(fits)
        blocks.append(context(f"…and {rest} more, less severe: `{command} status INC-n` shows one"))
    return Reply(f"{len(incidents)} open incident(s)", blocks)


def timeline_reply(incident: Incident, events: list[TimelineEvent], command: str, page: int = 1) -> Reply:
    """One page of the timeline, newest page first, sized to fit one Slack message; says where the rest is."""
    pins = pin_view(events)
    lines = [calls_line(*e) if isinstance(e, tuple) else event_line(e, pins) for e in folded(events)]
    split = pages(lines) or [[]]
    page = min(max(page, 1), len(split))
    shown = split[page - 1]
    newer = sum(len(p) for p in split[: page - 1])
    first, last = len(lines) - newer - len(shown) + 1, len(lines) - newer
    head = f"*Timeline of {incident.ref}* ({len(lines)} entries"
    head += ")" if len(split) == 1 else f", {first} to {last} shown)"
    blocks = chunks(head, shown)
    more = []
    if page < len(split):
        more.append(f"older: `{command} timeline {incident.ref} {page + 1}`")
    if page > 1:
        more.append(f"newer: `{command} timeline {incident.ref} {page - 1}`")
    if more:
        blocks.append(context(f"Page {page} of {len(split)} · " + " · ".join(more)))
    return Reply(f"Timeline of {incident.ref}", blocks)


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
