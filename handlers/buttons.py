"""Buttons on firebreak's messages: each is one decorated function, run after the ack."""

from __future__ import annotations

from typing import Any

from bot.models import IC
from bot.render.posts import CLAIM_IC_ACTION
from bot.render.replies import Reply, outcome_reply
from handlers.registry import HandlerTable, InteractionContext

handlers = HandlerTable()


@handlers.action(CLAIM_IC_ACTION)
async def claim_ic(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """The summary's "I'll be IC": whoever presses it takes the role; a double click changes nothing twice."""
    incident = await ctx.service.get(int(action["value"]))
    outcome = await ctx.service.assign_role(incident, IC, ctx.actor.id, ctx.actor, ctx.op)
    return outcome_reply(outcome, f"You're now IC of {incident.ref}.", f"You're already IC of {incident.ref}.")
