"""Pins and :pushpin: reactions in an incident channel join its timeline; unpinning marks the entry."""

from __future__ import annotations

from typing import Any

from bot.core.pins import reaction
from bot.models import ChatMessage
from bot.render.replies import Reply
from handlers.registry import HandlerTable, InteractionContext

handlers = HandlerTable()
PUSHPIN = "pushpin"


def _pinned_message(event: dict[str, Any]) -> bool:
    item = event.get("item") or {}
    return item.get("type") == "message" and bool((item.get("message") or {}).get("ts"))


def _pushpin(event: dict[str, Any]) -> bool:
    item = event.get("item") or {}
    return event.get("reaction") == PUSHPIN and item.get("type") == "message" and bool(item.get("ts"))


@handlers.event("pin_added", accepts=_pinned_message)
async def pin_added(ctx: InteractionContext, event: dict[str, Any]) -> Reply | None:
    message = event["item"]["message"]
    pinned = ChatMessage(ts=message["ts"], text=message.get("text", ""), user=message.get("user"))
    await ctx.service.record_pin(ctx.channel_id, pinned.ts, ctx.actor, pinned)
    return None


@handlers.event("pin_removed", accepts=_pinned_message)
async def pin_removed(ctx: InteractionContext, event: dict[str, Any]) -> Reply | None:
    await ctx.service.record_unpin(ctx.channel_id, event["item"]["message"]["ts"], ctx.actor)
    return None


@handlers.event("reaction_added", accepts=_pushpin)
async def pushpin_added(ctx: InteractionContext, event: dict[str, Any]) -> Reply | None:
    await ctx.service.record_pin(ctx.channel_id, event["item"]["ts"], ctx.actor, source=reaction(ctx.user))
    return None


@handlers.event("reaction_removed", accepts=_pushpin)
async def pushpin_removed(ctx: InteractionContext, event: dict[str, Any]) -> Reply | None:
    await ctx.service.record_unpin(ctx.channel_id, event["item"]["ts"], ctx.actor, source=reaction(ctx.user))
    return None
