"""The triage channel's buttons: declare an incident from an alert group (whoever presses it becomes IC), or
ignore the group. One decorated function each."""

from __future__ import annotations

from typing import Any

from bot.core.errors import UsageError
from bot.core.triaging import Triaging
from bot.models import IC
from bot.render.alerts import TRIAGE_DECLARE_ACTION, TRIAGE_IGNORE_ACTION
from bot.render.replies import Reply
from handlers.registry import HandlerTable, InteractionContext

handlers = HandlerTable()


def _alerting(ctx: InteractionContext) -> Triaging:
    if ctx.service.alerting is None:
        raise UsageError("Alert intake is not set up in this firebreak.")
    return ctx.service.alerting


@handlers.action(TRIAGE_DECLARE_ACTION)
async def declare_from_alerts(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    _, incident = await _alerting(ctx).decide(str(action["value"]), ctx.actor.id, True, ctx.op)
    assert incident is not None
    if incident.roles.get(IC) is None:
        await ctx.service.assign_role(incident, IC, ctx.actor.id, ctx.actor, ctx.op.sub("ic"))
    return Reply(f":rotating_light: Declared {incident.ref} in <#{incident.channel_id}>; you're IC.")


@handlers.action(TRIAGE_IGNORE_ACTION)
async def ignore_alerts(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    await _alerting(ctx).decide(str(action["value"]), ctx.actor.id, False, ctx.op)
    return Reply("Ignored: this alert group opens nothing, and its message no longer offers to.")
