"""The incident record: plain pydantic data, no I/O, serialised to Redis as JSON."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.models.actors import Actor
from bot.models.alerts import AlertOrigin

IC = "ic"
"""The incident commander's role name; every incident has this role, the configuration adds others."""
MAX_TITLE = 150
"""Longest title accepted (the declare form's field has the same limit)."""
MAX_TEXT = 3000
"""Longest update, note or description kept; longer text is cut here."""


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not Status.RESOLVED


OPEN_STATUSES = tuple(s for s in Status if s.is_open)


class ActiveMitigation(BaseModel):
    """A mitigation whose effect lasts until undone (a cordon, a paused sync, a deploy freeze)."""

    model_config = ConfigDict(frozen=True)

    number: int
    playbook: str
    label: str
    """What it did, in a few words: "cordon 3 nodes (prod)"."""
    flag: str | None = None
    """Shown in the channel topic while active ("deploy freeze")."""


class ReminderState(BaseModel):
    """Where the incident's reminders stand. `at` is when the scheduler next acts for it: the store keeps one
    durable job per incident at that time, written atomically with the record (so none is lost or doubled)."""

    model_config = ConfigDict(frozen=True)

    at: datetime | None = None
    """The next time the scheduler acts (remind, escalate, nudge); None for a resolved incident."""
    missed: int = 0
    """Reminders posted since the last status update (or snooze)."""
    last_at: datetime | None = None
    """When the last reminder or nudge was posted."""
    escalated: bool = False
    """This streak of missed reminders (or this missing role) was escalated already."""
    message_ts: str | None = None
    """The reminder whose buttons are live; edited when it is answered, snoozed or superseded."""
    role_nudges: int = 0
    """Nudges posted about a missing IC or required role since they were last all filled."""
    role_at: datetime | None = None
    """When the last of those was posted."""
    stale_at: datetime | None = None
    """When the last daily "still open?" nudge was posted."""


class Incident(BaseModel):
    """The incident record. `version` guards concurrent edits (optimistic locking in the store)."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    description: str = ""
    severity: int
    status: Status = Status.INVESTIGATING
    declared_by: Actor
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
    recovered_at: datetime | None = None
    """When recovery was first verified (every SLO signal met its target over the window): the metrics count
    time to recover to here."""
    active: tuple[ActiveMitigation, ...] = ()
    """Lasting mitigations not yet undone, in the order they ran."""
    reminder: ReminderState = ReminderState()
    scope: dict[str, str] = Field(default_factory=dict)
    """What is affected, as labels (service, model, pool, cluster, namespace): alerts with the same scope attach
    to this incident instead of opening another."""
    impact_started_at: datetime | None = None
    """When users started to be affected, if known (the first alert's startsAt): MTTD counts from here."""
    origin: AlertOrigin | None = None
    """The alert it was declared from."""
    last_activity_at: datetime | None = None
    """The last change to the record (an update, a handoff, a severity change): a stale incident has none."""
    version: int = 0

    @field_validator("declared_by", mode="before")
    @classmethod
    def _legacy_declarer(cls, v: Any) -> Any:
        """Records written before actors were typed hold the declarer's Slack user id as a plain string."""
        return Actor.user(v) if isinstance(v, str) else v

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
    def time_to_recover(self) -> timedelta | None:
        """From when users were first affected (else the declaration) to verified recovery: what MTTR averages."""
        if self.recovered_at is None:
            return None
        return max(timedelta(0), self.recovered_at - (self.impact_started_at or self.declared_at))

    @property
    def flags(self) -> list[str]:
        return list(dict.fromkeys(a.flag for a in self.active if a.flag))

    @property
    def sev_label(self) -> str:
        return f"SEV{self.severity}"
