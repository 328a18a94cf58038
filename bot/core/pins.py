"""Pinned messages join the timeline once, at the time they were posted; unpinning marks them so."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.ports import Chat, Clock, IncidentStore
from bot.models import MAX_TEXT, Actor, ChatMessage, Pinned, TimelineEvent, Unpinned


def _pin_key(ts: str) -> str:
    return f"pin:{ts}"


class Pins:
    def __init__(self, store: IncidentStore, chat: Chat, clock: Clock) -> None:
        self.store = store
        self.chat = chat
        self.clock = clock

    async def record_pin(self, channel_id: str, ts: str, actor: Actor, message: ChatMessage | None = None) -> bool:
        """A pinned (or :pushpin:-reacted) message joins the timeline once, at the time it was originally posted."""
        incident = await self.store.by_channel(channel_id)
        if incident is None:
            return False
        if message is None:
            message = await self.chat.fetch_message(channel_id, ts)
        if message is None:
            return False
        event = TimelineEvent(
            at=datetime.fromtimestamp(float(message.ts), UTC),
            actor=actor,
            payload=Pinned(text=message.text[:MAX_TEXT], message_ts=message.ts, author=message.user),
        )
        return await self.store.append_once(incident.id, _pin_key(message.ts), event)

    async def record_unpin(self, channel_id: str, ts: str, actor: Actor) -> bool:
        """An unpin (or a removed :pushpin:) marks the pinned entry; pinning it again brings it back."""
        incident = await self.store.by_channel(channel_id)
        if incident is None:
            return False
        event = TimelineEvent(at=self.clock(), actor=actor, payload=Unpinned(message_ts=ts))
        return await self.store.retract(incident.id, _pin_key(ts), event)
