"""Pinned messages join the timeline once, at the time they were posted; unpinning marks them so.

A message counts as pinned while anything pins it: Slack's own pin, or anyone's :pushpin: reaction. Removing
one of several (a :pushpin: from a message that is also pinned) changes nothing in the timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.deps import Verbs
from bot.models import MAX_TEXT, Actor, ChatMessage, Pinned, TimelineEvent, Unpinned

SLACK_PIN = "pin"


def reaction(user: str | None) -> str:
    """A :pushpin: is one person's: two people's pushpins are two things holding the message pinned."""
    return f"reaction:{user or '?'}"


class Pins(Verbs):
    async def record_pin(
        self, channel_id: str, ts: str, actor: Actor, message: ChatMessage | None = None, *, source: str = SLACK_PIN
    ) -> bool:
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
        return await self.store.pin(incident.id, message.ts, source, event)

    async def record_unpin(self, channel_id: str, ts: str, actor: Actor, *, source: str = SLACK_PIN) -> bool:
        """The last unpin (or removed :pushpin:) marks the pinned entry; pinning it again brings it back."""
        incident = await self.store.by_channel(channel_id)
        if incident is None:
            return False
        event = TimelineEvent(at=self.clock(), actor=actor, payload=Unpinned(message_ts=ts))
        return await self.store.unpin(incident.id, ts, source, event)
