"""The side effects the core needs, as small Protocols; adapters in bot/adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from bot.models import ChatMessage, Incident, Post, TimelineEvent


class IncidentStore(Protocol):
    """Durable incident state. Writes are atomic: a record, its index entries and its timeline events land together."""

    async def ping(self) -> None:
        """Raise if the store is unreachable."""

    async def allocate_id(self) -> int: ...

    async def claim(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is claimed within the ttl: deduplication of retries and double clicks."""

    async def bind(self, key: str, incident_id: int, ttl_seconds: int) -> int:
        """Bind an idempotency key to an incident id; returns the id already bound if there is one."""

    async def insert(self, incident: Incident, events: Sequence[TimelineEvent]) -> Incident: ...

    async def save(self, incident: Incident, events: Sequence[TimelineEvent]) -> Incident:
        """Store `incident` if nobody saved since it was read (same version); raise Conflict otherwise."""

    async def get(self, incident_id: int) -> Incident | None: ...

    async def by_channel(self, channel_id: str) -> Incident | None: ...

    async def by_channel_name(self, name: str) -> Incident | None: ...

    async def list_open(self) -> list[Incident]: ...

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """Events ordered by when they happened (pins carry their message's original time)."""

    async def append(self, incident_id: int, event: TimelineEvent) -> None:
        """Add a timeline event that changes nothing else about the incident (notes, warnings)."""

    async def append_once(self, incident_id: int, dedupe: str, event: TimelineEvent) -> bool:
        """Append unless an event with the same dedupe key was appended before; True if appended."""

    async def due_for_reminder(self, now: datetime, lease_seconds: int, limit: int) -> list[int]:
        """Incidents whose next update is due, leased so that only one worker reminds."""

    def lock(self, name: str, timeout_seconds: float) -> AbstractAsyncContextManager[None]:
        """A lock shared by every firebreak process on this store."""


class Chat(Protocol):
    """The chat platform, in the terms the incident process needs. Failures raise ChatError."""

    async def create_channel(self, name: str) -> str:
        """Create a public channel and return its id; ChannelNameTaken if the name exists."""

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None: ...

    async def set_topic(self, channel_id: str, topic: str) -> None: ...

    async def post(self, channel: str, post: Post) -> str:
        """Post and return the message timestamp."""

    async def edit(self, channel: str, ts: str, post: Post) -> None: ...

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None: ...


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware UTC."""
