"""The evidence panel from Slack: `/incident evidence` and the summary's Evidence button post it in the channel;
`/incident verify` checks recovery."""

from __future__ import annotations

from typing import Any

from bot.models.evidence import Evidence, Health
from bot.render.evidence import EVIDENCE_ACTION, recovery_reply
from bot.render.replies import Reply
from handlers.parsing import no_args
from handlers.registry import CommandContext, HandlerTable, InteractionContext

handlers = HandlerTable()


def _posted(evidence: Evidence, channel: str | None) -> Reply:
    suspect = sum(1 for c in evidence.layers if c.health is Health.SUSPECT)
    where = f"<#{channel}>" if channel else "the incident channel"
    failed = f", {len(evidence.failed)} queries failed" if evidence.failed else ""
    return Reply(f":bar_chart: Evidence posted in {where} ({suspect} layer check(s) suspect{failed}).")


@handlers.subcommand(
    "evidence",
    usage="evidence",
    summary="Post the golden signals (now, 1 h and 1 d ago, SLO burn) and each layer's health from Prometheus.",
    parse=no_args,
)
async def evidence(ctx: CommandContext, _: None) -> Reply:
    found = await ctx.service.evidence.share(ctx.target, ctx.actor, ctx.op)
    return _posted(found, ctx.target.channel_id)


@handlers.action(EVIDENCE_ACTION)
async def evidence_button(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """The summary's Evidence button: the same panel, posted in the channel the summary is in."""
    incident = await ctx.service.get(int(action["value"]))
    found = await ctx.service.evidence.share(incident, ctx.actor, ctx.op)
    return _posted(found, incident.channel_id)


@handlers.subcommand(
    "verify",
    usage="verify",
    summary="Check recovery: each SLO signal met its target over the window, each layer healthy now (recorded).",
    parse=no_args,
)
async def verify(ctx: CommandContext, _: None) -> Reply:
    recovery = await ctx.service.recovery.verify(ctx.target)
    outcome = await ctx.service.recovery.record(ctx.target, recovery, ctx.actor, ctx.op)
    return Reply(*recovery_reply(outcome.incident, recovery))
