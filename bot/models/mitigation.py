"""A mitigation request: the plan someone asked for, who approved it, and what running it did, as data."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.models.plans import Outcome, Plan, Result


class MitigationState(StrEnum):
    PENDING = "pending"
    """Planned, waiting for approvals."""
    REFUSED = "refused"
    """The plan may not run (over a blast-radius limit, or the API server's dry run refused a write)."""
    APPROVED = "approved"
    """Approved; the run is queued and will re-read the cluster first."""
    RUNNING = "running"
    DONE = "done"
    """Ran to the end; each object's result says how it went."""
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    """The cluster changed between plan and approval: a new plan was posted for approval instead."""
    INTERRUPTED = "interrupted"
    """The process running it died midway; what was and was not done is reported, nothing is repeated."""
    FAILED = "failed"
    """Could not start (the cluster could not be read when re-planning)."""

    @property
    def live(self) -> bool:
        """Still waiting for a decision: buttons on its message act."""
        return self is MitigationState.PENDING

    @property
    def finished(self) -> bool:
        return self in (MitigationState.DONE, MitigationState.INTERRUPTED)


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    at: datetime


class Mitigation(BaseModel):
    """One request to run a playbook in an incident. `version` guards concurrent clicks (compare-and-set)."""

    model_config = ConfigDict(frozen=True)

    incident_id: int
    number: int = 0
    """Allocated by the store, 1, 2, ... per incident."""
    channel_id: str
    playbook: str
    params: dict[str, Any]
    requester: str
    as_user: str | None = None
    """The Kubernetes user its writes impersonate, when impersonation is configured."""
    created_at: datetime
    expires_at: datetime
    needed: int
    """Approvals needed (distinct people)."""
    approvers: tuple[str, ...] = ()
    """Who may approve (users and user groups); empty means anyone but the requester."""
    self_approval: bool = False
    plan: Plan
    state: MitigationState = MitigationState.PENDING
    approvals: list[Approval] = Field(default_factory=list)
    decided_by: str | None = None
    """Who rejected it."""
    reason: str | None = None
    """Why it was refused, failed, superseded or interrupted."""
    results: list[Result] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message_ts: str | None = None
    """Its message in the incident channel (the plan, its state and its buttons, edited in place)."""
    undo_of: int | None = None
    """The request this one reverses."""
    undone_by: int | None = None
    """The request that reverses this one (asked for; see its state)."""
    next_plan: int | None = None
    """The request that replaced this one when the cluster changed before approval."""
    undo_params: dict[str, Any] | None = None
    """What reverses exactly what this run did (computed from its results), if anything does."""
    version: int = 0

    @property
    def ref(self) -> str:
        return f"M{self.number}"

    @property
    def key(self) -> str:
        """The request's identity in buttons and jobs: `<incident>:<number>`."""
        return f"{self.incident_id}:{self.number}"

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)


class AuditEntry(BaseModel):
    """One line of the append-only audit stream: who did what to which request or object, with what result."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    incident_id: int
    number: int
    """The mitigation request (0 for none)."""
    actor: str
    """A Slack user id, or "firebreak"."""
    action: str
    """requested, refused, approved, rejected, expired, superseded, started, call, finished, interrupted, ..."""
    playbook: str = ""
    cluster: str = ""
    target: str = ""
    """For `call`: the object written."""
    outcome: str = ""
    detail: str = ""
