"""Timeline events: each kind carries a typed payload, so the postmortem and the metrics read facts, not prose."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.models.actors import FIREBREAK, Actor
from bot.models.incident import IC, Status


class EventKind(StrEnum):
    DECLARED = "declared"
    CHANNEL_CREATED = "channel_created"
    ROLE_ASSIGNED = "role_assigned"
    IC_HANDOFF = "ic_handoff"
    SEVERITY_CHANGED = "severity_changed"
    STATUS_UPDATE = "status_update"
    NOTE = "note"
    PINNED = "pinned"
    UNPINNED = "unpinned"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    REMINDER = "reminder"
    WARNING = "warning"
    MITIGATION = "mitigation"
    SNOOZED = "snoozed"
    MISSED = "missed"
    ESCALATED = "escalated"
    NUDGED = "nudged"
    ALERT = "alert"
    EVIDENCE = "evidence"
    VERIFIED = "verified"
    GUIDE = "guide"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Declared(_Payload):
    kind: Literal[EventKind.DECLARED] = EventKind.DECLARED
    title: str
    severity: int


class ChannelCreated(_Payload):
    kind: Literal[EventKind.CHANNEL_CREATED] = EventKind.CHANNEL_CREATED
    channel_id: str
    channel_name: str


class RoleAssigned(_Payload):
    """Someone took a role that was empty, or a role other than IC changed hands."""

    kind: Literal[EventKind.ROLE_ASSIGNED] = EventKind.ROLE_ASSIGNED
    role: str
    user: str
    previous: str | None = None


class IcHandoff(_Payload):
    kind: Literal[EventKind.IC_HANDOFF] = EventKind.IC_HANDOFF
    user: str
    previous: str


class SeverityChanged(_Payload):
    kind: Literal[EventKind.SEVERITY_CHANGED] = EventKind.SEVERITY_CHANGED
    previous: int
    severity: int

    @property
    def raised(self) -> bool:
        """Level 1 is the worst, so a lower number is a raise."""
        return self.severity < self.previous


class StatusUpdated(_Payload):
    kind: Literal[EventKind.STATUS_UPDATE] = EventKind.STATUS_UPDATE
    text: str
    status: Status
    next_update_due: datetime


class NoteAdded(_Payload):
    kind: Literal[EventKind.NOTE] = EventKind.NOTE
    text: str


class Pinned(_Payload):
    """A message pinned (or marked with :pushpin:) in the incident channel; the event's time is the message's."""

    kind: Literal[EventKind.PINNED] = EventKind.PINNED
    text: str
    message_ts: str
    author: str | None = None


class Unpinned(_Payload):
    kind: Literal[EventKind.UNPINNED] = EventKind.UNPINNED
    message_ts: str


class Resolved(_Payload):
    kind: Literal[EventKind.RESOLVED] = EventKind.RESOLVED
    summary: str | None = None
    overridden: list[str] = []
    """What the person resolved over, after the prompt said so ("Resolve anyway"): mitigations left in force,
    SLO signals or layers not verified healthy. Empty for a plain resolve."""


class Reopened(_Payload):
    kind: Literal[EventKind.REOPENED] = EventKind.REOPENED


class Reminded(_Payload):
    """The IC was reminded that a status update is overdue."""

    kind: Literal[EventKind.REMINDER] = EventKind.REMINDER
    ic: str | None
    due: datetime
    last_update_at: datetime | None = None
    number: int = 1
    """The how-many-th reminder since the last update."""
    late_seconds: float = 0
    """How long after its time it was posted (no firebreak was running when it came due)."""


class Snoozed(_Payload):
    """Someone put the update off: the next one is due `minutes` later, at `until`."""

    kind: Literal[EventKind.SNOOZED] = EventKind.SNOOZED
    minutes: int
    until: datetime


class Missed(_Payload):
    """A reminder went unanswered until the next one came."""

    kind: Literal[EventKind.MISSED] = EventKind.MISSED
    ic: str | None
    reminders: int
    """Reminders missed in a row so far."""


class Escalated(_Payload):
    """The escalation target was called: updates missed in a row, or a role nobody took."""

    kind: Literal[EventKind.ESCALATED] = EventKind.ESCALATED
    target: str | None
    reason: str


class Nudged(_Payload):
    """The channel was told something needs a person: a role nobody took, or an incident nobody touched."""

    kind: Literal[EventKind.NUDGED] = EventKind.NUDGED
    reason: str
    roles: list[str] = []
    """The roles nobody holds, for a role nudge."""


class Warned(_Payload):
    """Something firebreak tried did not happen (Slack refused); `text` says what and how to fix it."""

    kind: Literal[EventKind.WARNING] = EventKind.WARNING
    text: str


class Mitigated(_Payload):
    """A step of a mitigation request: asked for, approved, rejected, expired, run, interrupted, undone."""

    kind: Literal[EventKind.MITIGATION] = EventKind.MITIGATION
    number: int
    playbook: str
    action: str
    text: str
    """The facts in one line: what the plan changes, or how the run went (per-call detail is in the audit)."""


class Alerted(_Payload):
    """An alert of the incident fired or resolved (each one, however many: the timeline loses none)."""

    kind: Literal[EventKind.ALERT] = EventKind.ALERT
    name: str
    status: Literal["firing", "resolved"]
    fingerprint: str
    summary: str = ""
    scope: dict[str, str] = {}
    starts_at: datetime
    flags: list[str] = []
    """What the alert lacks by good alerting practice (a scope label, a runbook)."""
    inhibited_by: str | None = None
    """The alert that explains this one (a dependency-wide failure), when an inhibition rule matched."""


class EvidenceShared(_Payload):
    """The evidence panel was posted in the channel: what it showed, as numbers the postmortem can quote."""

    kind: Literal[EventKind.EVIDENCE] = EventKind.EVIDENCE
    suspect: list[str] = []
    """The layer checks past their thresholds, as "<layer>: <check>"."""
    slo: dict[str, float] = {}
    """Each SLO signal's good share at the time (its name to the value); missing when it had no value."""
    burn: dict[str, float] = {}
    """Each SLO signal's error-budget burn rate at the time."""
    failed: int = 0
    """Queries that failed."""


class Verified(_Payload):
    """Recovery was verified: every SLO signal met its target at every point of the window, every layer healthy."""

    kind: Literal[EventKind.VERIFIED] = EventKind.VERIFIED
    window_seconds: float
    slo: dict[str, float] = {}
    """Each SLO signal's worst value over the window."""
    layers: int = 0
    """Layer checks that were healthy."""


class GuideAnswered(_Payload):
    """The IC answered one of `/incident guide`'s questions (user impact, layer, recent change, saturation)."""

    kind: Literal[EventKind.GUIDE] = EventKind.GUIDE
    question: str
    """The question's key: impact, layer, change or saturation."""
    answer: str
    """`yes`, `no`, or the layer's name."""
    guide: str = ""
    """Which run of the guide (one `/incident guide`); empty in records from before runs were told apart."""
    step: int | None = None
    """The question's place on that run's path (0 = impact). An answer to an earlier step than the path's end
    replaces that step and everything after it (the IC answered differently)."""
    basis: str = ""
    """Set when firebreak answered from the evidence or the change history: what it read (the IC can answer
    differently)."""
    version: int | None = None
    """Which of the run's answers this is (0, 1, ...; each recorded once): a run's answers are ordered by it, not
    by time, as replicas' clocks differ."""


Payload = Annotated[
    Declared
    | ChannelCreated
    | RoleAssigned
    | IcHandoff
    | SeverityChanged
    | StatusUpdated
    | NoteAdded
    | Pinned
    | Unpinned
    | Resolved
    | Reopened
    | Reminded
    | Warned
    | Mitigated
    | Snoozed
    | Missed
    | Escalated
    | Nudged
    | Alerted
    | EvidenceShared
    | Verified
    | GuideAnswered,
    Field(discriminator="kind"),
]


class TimelineEvent(BaseModel):
    """One entry of the incident's timeline: who (a person or a source) did what, when (UTC)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: Actor = FIREBREAK
    payload: Payload

    @property
    def kind(self) -> EventKind:
        return self.payload.kind

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        """Events written before payloads were typed: {at, kind, text, actor, data: {str: str}}."""
        if isinstance(raw, dict) and "payload" not in raw and "kind" in raw:
            return _upgrade(raw)
        return raw


def _upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    kind, text, data = raw["kind"], str(raw.get("text", "")), dict(raw.get("data") or {})
    fields: dict[str, Any] = {"kind": kind}
    if kind == EventKind.DECLARED:
        label, _, title = text.removeprefix("Declared ").partition(": ")
        fields |= {"title": title, "severity": int(label.removeprefix("SEV") or 0)}
    elif kind == EventKind.CHANNEL_CREATED:
        fields |= {"channel_id": data.get("channel", ""), "channel_name": text.split("#")[-1].split(" ")[0]}
    elif kind == EventKind.ROLE_ASSIGNED:
        fields |= {"role": data.get("role", IC), "user": data.get("user", ""), "previous": data.get("previous")}
    elif kind == EventKind.IC_HANDOFF:
        fields |= {"user": data.get("user", ""), "previous": data.get("previous", "")}
    elif kind == EventKind.SEVERITY_CHANGED:
        fields |= {"previous": int(data["previous"]), "severity": int(data["severity"])}
    elif kind == EventKind.STATUS_UPDATE:
        fields |= {"text": text, "status": data.get("status"), "next_update_due": data.get("next_update_due")}
    elif kind in (EventKind.NOTE, EventKind.WARNING):
        fields |= {"text": text}
    elif kind == EventKind.PINNED:
        fields |= {"text": text, "message_ts": data.get("message_ts", ""), "author": data.get("author")}
    elif kind == EventKind.RESOLVED:
        fields |= {"summary": text.removeprefix("Resolved").removeprefix(": ") or None}
    elif kind == EventKind.REMINDER:
        fields |= {"ic": data.get("ic") or None, "due": raw["at"]}
    actor = raw.get("actor")
    return {"at": raw["at"], "actor": Actor.user(actor) if isinstance(actor, str) else FIREBREAK, "payload": fields}
