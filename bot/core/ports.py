"""The side effects the core needs, as small Protocols; adapters in bot/adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.models import ChatMessage, Incident, Post, TimelineEvent


class LockKind(StrEnum):
    """Locks shared by every firebreak process; the store turns (kind, incident) into a key."""

    PROVISION = "provision"
    """Creating an incident's channel, summary and announcement."""
    SYNC = "sync"
    """Re-rendering an incident's topic, summary and announcement from the latest record."""


class ClaimKind(StrEnum):
    """What an idempotency claim deduplicates."""

    SLACK_TRIGGER = "slack-trigger"
    """A slash command or click (Slack's trigger_id): Slack's retries and double submits."""
    SLACK_VIEW = "slack-view"
    """A modal submission (the view id): double clicks on Submit."""
    SLACK_EVENT = "slack-event"
    """An Events API delivery (event_id): Slack's retries."""


class IncidentStore(Protocol):
    """Durable incident state. Writes are atomic: a record, its index entries and its timeline events land together."""

    async def ping(self) -> None:
        """Raise if the store is unreachable."""

    async def allocate_id(self) -> int: ...

    async def bind_declare(self, actor: str, fingerprint: str, incident_id: int, ttl_seconds: int) -> int:
        """Bind a declare (who, which title) to an incident id; returns the id already bound if there is one."""

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
        """Append unless `dedupe` is marked for this incident; marks it. True if appended."""

    async def retract(self, incident_id: int, dedupe: str, event: TimelineEvent) -> bool:
        """If `dedupe` is marked, unmark it and append `event` (an unpin undoes a pin). True if appended."""

    async def due_for_reminder(self, now: datetime, lease_seconds: int, limit: int) -> list[int]:
        """Incidents whose next update is due, leased so that only one worker reminds."""

    def lock(self, kind: LockKind, incident_id: int, timeout_seconds: float) -> AbstractAsyncContextManager[None]:
        """A lock shared by every firebreak process on this store."""


class Claims(Protocol):
    """Idempotency claims: the first delivery of a request wins, repeats are recognised and dropped."""

    async def claim(self, kind: ClaimKind, ident: str, ttl_seconds: int) -> bool:
        """True the first time (kind, ident) is claimed within the ttl."""


class Chat(Protocol):
    """The chat platform, in the terms the incident process needs. Failures raise ChatError."""

    async def resolve_channel(self, ref: str) -> str:
        """A channel id for `ref` (an id, or a #name); ChatError if there is no such channel."""

    async def create_channel(self, name: str) -> str:
        """Create a public channel and return its id; ChannelNameTaken if the name exists."""

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None: ...

    async def set_topic(self, channel_id: str, incident: Incident) -> None:
        """Show the incident's state (severity, status, IC, title) as the channel topic."""

    async def post(self, channel: str, post: Post) -> str:
        """Post and return the message timestamp."""

    async def edit(self, channel: str, ts: str, post: Post) -> None: ...

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None: ...


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware UTC."""


# ---- the cluster, for mitigation playbooks ------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRef:
    """One Kubernetes object: its API group/version, kind, name and (for namespaced kinds) namespace."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


class PatchType(StrEnum):
    """The patch content types the Kubernetes API accepts; each means something different."""

    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    JSON = "application/json-patch+json"


class Cluster(Protocol):
    """A Kubernetes API server, as playbooks use it. Objects are the API's own JSON.

    Failures raise ClusterError with the API's status code and message (409 conflict, 404, 429 for an
    eviction a PodDisruptionBudget blocks), so a playbook can report each object's result.
    """

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    async def patch(self, ref: ObjectRef, body: Any, *, patch_type: PatchType, dry_run: bool = False) -> dict[str, Any]:
        """Apply a patch; with dry_run the server validates and answers without persisting (dryRun=All)."""

    async def evict(self, pod: ObjectRef, *, dry_run: bool = False) -> None:
        """Evict a pod through the Eviction API, which honours PodDisruptionBudgets."""


# ---- metrics, for the evidence panel --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One series' value at one instant."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series over a time range."""

    labels: Mapping[str, str]
    points: tuple[tuple[datetime, float], ...] = field(default_factory=tuple)


class MetricsSource(Protocol):
    """A Prometheus-compatible query API. Failures raise MetricsError naming the query and the reason."""

    async def instant(self, query: str, at: datetime | None = None) -> list[Sample]: ...

    async def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> list[Series]: ...
