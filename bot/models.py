"""Incident domain models: plain pydantic data, no I/O, serialised to Redis as JSON."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

IC = "ic"


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not Status.RESOLVED


OPEN_STATUSES = tuple(s for s in Status if s.is_open)


class EventKind(StrEnum):
    DECLARED = "declared"
    CHANNEL_CREATED = "channel_created"
    ROLE_ASSIGNED = "role_assigned"
    IC_HANDOFF = "ic_handoff"
    SEVERITY_CHANGED = "severity_changed"
    STATUS_UPDATE = "status_update"
    NOTE = "note"
    PINNED = "pinned"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    REMINDER = "reminder"
    WARNING = "warning"


class Incident(BaseModel):
    """The incident record. `version` guards concurrent edits (optimistic locking in the store)."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    description: str = ""
    severity: int
    status: Status = Status.INVESTIGATING
    declared_by: str
    declared_at: datetime
    roles: dict[str, str] = Field(default_factory=dict)
    """role name -> Slack user id; 'ic' is the incident commander."""
    channel_id: str | None = None
    channel_name: str | None = None
    summary_ts: str | None = None
    announce_channel: str | None = None
    announce_ts: str | None = None
    last_update_at: datetime | None = None
    next_update_due: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    version: int = 0

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def ic(self) -> str | None:
        return self.roles.get(IC)

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def sev_label(self) -> str:
        return f"SEV{self.severity}"


class TimelineEvent(BaseModel):
    """One line of the incident's timeline: who did what, when (UTC)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: EventKind
    text: str
    actor: str | None = None
    """Slack user id, or None when firebreak itself acted."""
    data: dict[str, str] = Field(default_factory=dict)


class PostKind(StrEnum):
    SUMMARY = "summary"
    ANNOUNCEMENT = "announcement"
    UPDATE = "update"
    NOTICE = "notice"
    REMINDER = "reminder"
    RESOLVED = "resolved"


class Post(BaseModel):
    """A message the core wants shown; the chat adapter decides how it looks."""

    model_config = ConfigDict(frozen=True)

    kind: PostKind
    incident: Incident
    text: str
    """Plain mrkdwn text: also the notification fallback."""
    thread_ts: str | None = None
    next_update_due: datetime | None = None


class ChatMessage(BaseModel):
    """A message read back from the chat platform (for pins and :pushpin: reactions)."""

    model_config = ConfigDict(frozen=True)

    ts: str
    text: str
    user: str | None = None
