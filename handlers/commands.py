"""The /incident subcommands: each is one decorated function; its parser runs before the ack, it runs after."""

from __future__ import annotations

from bot.models import IC
from bot.render.mrkdwn import slack_time
from bot.render.replies import (
    Reply,
    declared_reply,
    declaring_ack,
    help_reply,
    list_reply,
    outcome_reply,
    status_reply,
    timeline_reply,
)
from bot.render.views import declare_modal
from handlers.mitigate import resolve_first
from handlers.parsing import (
    DeclareArgs,
    UpdateArgs,
    no_args,
    parse_declare,
    parse_ic,
    parse_page,
    parse_role,
    parse_sev,
    parse_update,
    required,
)
from handlers.registry import CommandContext, HandlerTable

handlers = HandlerTable()


@handlers.subcommand(
    "declare",
    usage="declare [{sevs}] <title>",
    summary="Declare an incident: opens its channel and announces it (no arguments: a form).",
    parse=parse_declare,
    needs_incident=False,
    ack_text=lambda args: declaring_ack(args.title, args.severity) if args else None,
)
async def declare(ctx: CommandContext, args: DeclareArgs | None) -> Reply | None:
    if args is None:
        await ctx.client.views_open(trigger_id=ctx.trigger_id, view=declare_modal(ctx.config, ctx.channel_id))
        return None
    outcome = await ctx.service.declare(title=args.title, severity=args.severity, actor=ctx.actor, op=ctx.op)
    return declared_reply(outcome, ctx.config)


@handlers.subcommand(
    IC, usage=f"{IC} [@user]", summary="Make someone (default: you) incident commander.", parse=parse_ic
)
async def ic(ctx: CommandContext, user: str | None) -> Reply:
    who = user or ctx.user
    outcome = await ctx.service.assign_role(ctx.target, IC, who, ctx.actor, ctx.op)
    return outcome_reply(
        outcome, f"<@{who}> is now IC of {ctx.target.ref}.", f"<@{who}> is already IC of {ctx.target.ref}."
    )


@handlers.subcommand("role", usage="role <{roles}> @user", summary="Assign a role.", parse=parse_role)
async def role(ctx: CommandContext, args: tuple[str, str]) -> Reply:
    name, who = args
    outcome = await ctx.service.assign_role(ctx.target, name, who, ctx.actor, ctx.op)
    return outcome_reply(outcome, f"<@{who}> is now {name} for {ctx.target.ref}.", f"<@{who}> already is {name}.")


@handlers.subcommand("sev", usage="sev <1-{max}>", summary="Change the severity.", parse=parse_sev)
async def sev(ctx: CommandContext, level: int) -> Reply:
    outcome = await ctx.service.set_severity(ctx.target, level, ctx.actor, ctx.op)
    return outcome_reply(outcome, f"{ctx.target.ref} is now SEV{level}.", f"{ctx.target.ref} already is SEV{level}.")


@handlers.subcommand(
    "update",
    usage="update [investigating:|identified:|monitoring:] <text> [next <minutes>]",
    summary="Post a status update here and under the announcement; sets when the next one is due.",
    parse=parse_update,
)
async def update(ctx: CommandContext, args: UpdateArgs) -> Reply:
    outcome = await ctx.service.post_update(
        ctx.target, args.text, ctx.actor, status=args.status, next_minutes=args.next_minutes, op=ctx.op
    )
    due = outcome.incident.next_update_due
    when = slack_time(due) if due else "the severity's cadence"
    return outcome_reply(outcome, f"Update posted here and under the announcement. Next one due by {when}.", "")


@handlers.subcommand(
    "note", usage="note <text>", summary="Add a note to the timeline.", parse=required("the note text")
)
async def note(ctx: CommandContext, text: str) -> Reply:
    outcome = await ctx.service.add_note(ctx.target, text, ctx.actor, ctx.op)
    return outcome_reply(outcome, f":spiral_note_pad: Noted in the {ctx.target.ref} timeline.", "")


@handlers.subcommand("status", usage="status", summary="Show the incident's state.", parse=no_args)
async def status(ctx: CommandContext, _: None) -> Reply:
    return status_reply(await ctx.service.get(ctx.target.id))


@handlers.subcommand("list", usage="list", summary="List open incidents.", parse=no_args, needs_incident=False)
async def list_open(ctx: CommandContext, _: None) -> Reply:
    return list_reply(await ctx.service.list_open(), ctx.config.command)


@handlers.subcommand("timeline", usage="timeline [page]", summary="Show the timeline, newest first.", parse=parse_page)
async def timeline(ctx: CommandContext, page: int) -> Reply:
    return timeline_reply(ctx.target, await ctx.service.timeline(ctx.target.id), ctx.config.command, page)


@handlers.subcommand("resolve", usage="resolve [summary]", summary="Resolve the incident.")
async def resolve(ctx: CommandContext, summary: str) -> Reply:
    recovery = await ctx.service.recovery.before_resolve(ctx.target)
    if (prompt := resolve_first(ctx.target, summary, recovery)) is not None:
        return prompt
    outcome = await ctx.service.resolve(ctx.target, summary, ctx.actor, ctx.op, recovery=recovery)
    return outcome_reply(outcome, f":white_check_mark: {ctx.target.ref} resolved.", "")


@handlers.subcommand("reopen", usage="reopen", summary="Reopen a resolved incident.", parse=no_args)
async def reopen(ctx: CommandContext, _: None) -> Reply:
    outcome = await ctx.service.reopen(ctx.target, ctx.actor, ctx.op)
    return outcome_reply(outcome, f"{ctx.target.ref} reopened.", "")


@handlers.subcommand("help", usage="help", summary="Show this help.", needs_incident=False)
async def help_(ctx: CommandContext, _: str) -> Reply:
    return help_reply(ctx.registry.usage(ctx.config), ctx.config)
