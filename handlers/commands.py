"""The /incident subcommands. Parsers run before the ack (so usage errors answer at once); runners after it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.adapters.slack_blocks import slack_time
from bot.config import IncidentConfig
from bot.errors import UsageError
from bot.models import IC, Status
from bot.refs import looks_like_severity, parse_severity, parse_user
from bot.service import Outcome
from handlers.modal import declare_modal
from handlers.registry import CommandContext, Registry, Reply
from handlers.render import help_reply, list_reply, status_reply, timeline_reply

registry = Registry()

_NEXT = re.compile(r"\s+next\s+(?P<n>\d+)\s*(?:m|min|mins|minutes?)?\s*$", re.IGNORECASE)
_STATUS_PREFIX = re.compile(r"^(?P<s>[a-z]+):\s*", re.IGNORECASE)
MAX_NEXT_MINUTES = 24 * 60


@dataclass(frozen=True)
class DeclareArgs:
    title: str
    severity: int | None


@dataclass(frozen=True)
class UpdateArgs:
    text: str
    status: Status | None
    next_minutes: int | None


def _no_args(rest: str, config: IncidentConfig) -> None:
    if rest.strip():
        raise UsageError(f"This subcommand takes no arguments (got {rest.strip()!r}).")


def _required(what: str) -> Callable[[str, IncidentConfig], str]:
    def parse(rest: str, config: IncidentConfig) -> str:
        if not rest.strip():
            raise UsageError(f"Missing {what}.")
        return rest.strip()

    return parse


def parse_declare(rest: str, config: IncidentConfig) -> DeclareArgs | None:
    rest = rest.strip()
    if not rest:
        return None  # no arguments: the modal asks for them
    first, _, title = rest.partition(" ")
    severity = None
    if looks_like_severity(first):
        severity = parse_severity(first, config.max_level)
    else:
        title = rest
    if not title.strip():
        raise UsageError("Missing the title after the severity.")
    return DeclareArgs(title=title.strip(), severity=severity)


def parse_update(rest: str, config: IncidentConfig) -> UpdateArgs:
    text, next_minutes = rest.strip(), None
    if m := _NEXT.search(" " + text):
        next_minutes = int(m["n"])
        if not 1 <= next_minutes <= MAX_NEXT_MINUTES:
            raise UsageError(f"`next` takes minutes from 1 to {MAX_NEXT_MINUTES}.")
        text = (" " + text)[: m.start()].strip()
    status = None
    if (m := _STATUS_PREFIX.match(text)) and m["s"].lower() in Status.__members__.values():
        status = Status(m["s"].lower())
        if status is Status.RESOLVED:
            raise UsageError("To resolve, use `resolve [summary]`.")
        text = text[m.end() :]
    if not text:
        raise UsageError("Say what changed, e.g. `update rolled back api to v41, error rate falling next 15`.")
    return UpdateArgs(text=text, status=status, next_minutes=next_minutes)


def parse_ic(rest: str, config: IncidentConfig) -> str | None:
    tokens = rest.split()
    if len(tokens) > 1:
        raise UsageError("Name one person.")
    return parse_user(tokens[0]) if tokens else None


def parse_role(rest: str, config: IncidentConfig) -> tuple[str, str]:
    tokens = rest.split()
    if len(tokens) != 2:
        raise UsageError("Name a role and one person.")
    role = tokens[0].lower()
    if role not in (IC, *config.roles):
        raise UsageError(f"Unknown role {tokens[0]!r}: roles are {', '.join((IC, *config.roles))}.")
    return role, parse_user(tokens[1])


def parse_sev(rest: str, config: IncidentConfig) -> int:
    tokens = rest.split()
    if len(tokens) != 1:
        raise UsageError("Give one severity.")
    return parse_severity(tokens[0], config.max_level)


def outcome_reply(outcome: Outcome, done: str, unchanged: str) -> Reply:
    text = done if outcome.changed else unchanged
    if outcome.warnings:
        text += "\n" + "\n".join(f":warning: {w}" for w in outcome.warnings)
    return Reply(text)


def _declare_ack(args: DeclareArgs | None) -> str | None:
    if args is None:
        return None
    sev = f"SEV{args.severity}" if args.severity else "an incident"
    return f":hourglass_flowing_sand: Declaring {sev}: *{args.title}* …"


@registry.subcommand(
    "declare",
    usage="declare [{sevs}] <title>",
    summary="Declare an incident: opens its channel and announces it (no arguments: a form).",
    parse=parse_declare,
    needs_incident=False,
    ack_text=_declare_ack,
)
async def declare(ctx: CommandContext, args: DeclareArgs | None) -> Reply | None:
    if args is None:
        await ctx.client.views_open(trigger_id=ctx.trigger_id, view=declare_modal(ctx.config, ctx.channel_id))
        return None
    outcome = await ctx.service.declare(title=args.title, severity=args.severity, actor=ctx.user)
    i = outcome.incident
    return outcome_reply(
        outcome,
        f":rotating_light: Declared *{i.ref}* ({i.sev_label}) in <#{i.channel_id}>. You're IC; "
        f"hand off with `{ctx.config.command} ic @someone`.",
        f"You declared *{i.ref}* moments ago: <#{i.channel_id}>. Nothing new was created.",
    )


@registry.subcommand(
    "ic", usage="ic [@user]", summary="Make someone (default: you) incident commander.", parse=parse_ic
)
async def ic(ctx: CommandContext, user: str | None) -> Reply:
    who = user or ctx.user
    outcome = await ctx.service.assign_role(ctx.target, IC, who, ctx.user)
    return outcome_reply(
        outcome, f"<@{who}> is now IC of {ctx.target.ref}.", f"<@{who}> is already IC of {ctx.target.ref}."
    )


@registry.subcommand("role", usage="role <{roles}> @user", summary="Assign a role.", parse=parse_role)
async def role(ctx: CommandContext, args: tuple[str, str]) -> Reply:
    name, who = args
    outcome = await ctx.service.assign_role(ctx.target, name, who, ctx.user)
    return outcome_reply(outcome, f"<@{who}> is now {name} for {ctx.target.ref}.", f"<@{who}> already is {name}.")


@registry.subcommand("sev", usage="sev <1-{max}>", summary="Change the severity.", parse=parse_sev)
async def sev(ctx: CommandContext, level: int) -> Reply:
    outcome = await ctx.service.set_severity(ctx.target, level, ctx.user)
    return outcome_reply(outcome, f"{ctx.target.ref} is now SEV{level}.", f"{ctx.target.ref} already is SEV{level}.")


@registry.subcommand(
    "update",
    usage="update [investigating:|identified:|monitoring:] <text> [next <minutes>]",
    summary="Post a status update here and under the announcement; sets when the next one is due.",
    parse=parse_update,
)
async def update(ctx: CommandContext, args: UpdateArgs) -> Reply:
    outcome = await ctx.service.post_update(
        ctx.target, args.text, ctx.user, status=args.status, next_minutes=args.next_minutes
    )
    due = outcome.incident.next_update_due
    when = slack_time(due) if due else "the severity's cadence"
    return outcome_reply(outcome, f"Update posted here and under the announcement. Next one due by {when}.", "")


@registry.subcommand(
    "note", usage="note <text>", summary="Add a note to the timeline.", parse=_required("the note text")
)
async def note(ctx: CommandContext, text: str) -> Reply:
    outcome = await ctx.service.add_note(ctx.target, text, ctx.user)
    return outcome_reply(outcome, f":spiral_note_pad: Noted in the {ctx.target.ref} timeline.", "")


@registry.subcommand("status", usage="status", summary="Show the incident's state.", parse=_no_args)
async def status(ctx: CommandContext, _: None) -> Reply:
    return status_reply(await ctx.service.get(ctx.target.id))


@registry.subcommand("list", usage="list", summary="List open incidents.", parse=_no_args, needs_incident=False)
async def list_open(ctx: CommandContext, _: None) -> Reply:
    return list_reply(await ctx.service.list_open(), ctx.config.command)


@registry.subcommand("timeline", usage="timeline", summary="Show the timeline.", parse=_no_args)
async def timeline(ctx: CommandContext, _: None) -> Reply:
    return timeline_reply(ctx.target, await ctx.service.timeline(ctx.target.id))


@registry.subcommand("resolve", usage="resolve [summary]", summary="Resolve the incident.")
async def resolve(ctx: CommandContext, summary: str) -> Reply:
    outcome = await ctx.service.resolve(ctx.target, summary, ctx.user)
    return outcome_reply(outcome, f":white_check_mark: {ctx.target.ref} resolved.", "")


@registry.subcommand("reopen", usage="reopen", summary="Reopen a resolved incident.", parse=_no_args)
async def reopen(ctx: CommandContext, _: None) -> Reply:
    outcome = await ctx.service.reopen(ctx.target, ctx.user)
    return outcome_reply(outcome, f"{ctx.target.ref} reopened.", "")


@registry.subcommand("help", usage="help", summary="Show this help.", needs_incident=False)
async def help_(ctx: CommandContext, _: str) -> Reply:
    return help_reply(registry, ctx.config)
