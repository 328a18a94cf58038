"""What a mitigation plan is, as data: the objects it changes, from what to what, and each object's result.

Plain pydantic (no I/O), so mitigation records and chat posts can carry plans; playbooks make them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.api_version, self.kind, self.name, self.namespace)

    def __str__(self) -> str:
        return str(self.ref)


class Change(BaseModel):
    """One object the plan changes: what it is now and what it will be (facts for people), and the write."""

    model_config = ConfigDict(frozen=True)

    target: Target
    before: dict[str, str]
    after: dict[str, str]
    patch: Any = None
    patch_type: PatchType | None = None
    evict: bool = False
    noop: bool = False
    """Already in the target state: reported as such, nothing is written."""
    phase: int = 0
    """Every write of a lower phase finishes before any of a higher one starts (drain: cordon, then evict)."""
    gating: bool = True
    """Whether this change is part of what was approved: approval re-plans and acts only if every gating
    change is as planned. A drain's evictions are not (the approval is for the nodes; whatever runs on them
    when it runs is evicted, as kubectl drain does); its cordons are."""
    needs: tuple[str, ...] = ()
    """Targets (as `str(target)`) whose writes must have succeeded (done or already so) before this one is
    made: a pod is evicted only from a node that was cordoned."""
    context: dict[str, str] = Field(default_factory=dict)
    """Facts shown beside the change that do not gate it: they may move between plan and approval (a budget's
    allowed disruptions as pods come and go) without the plan having to be approved again."""


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    playbook: str
    cluster: str
    params: dict[str, Any]
    changes: list[Change] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    """What an operator should know (a parent that would revert a pause, the pool's state after)."""
    refused: list[str] = Field(default_factory=list)
    """Why this plan may not run (over a blast-radius limit), with the numbers; a refused plan offers no Approve."""
    dry_run: list[str] = Field(default_factory=list)
    """What the API server's dry run of each write refused, if anything."""
    locks: list[str] = Field(default_factory=list)
    """Besides each target, what a run holds while it acts (a node pool, so two requests can't each take the
    pool's last spare node)."""

    @property
    def fingerprint(self) -> str:
        """The state the plan was made from: approval re-plans and acts only if this is unchanged."""
        facts = [(str(c.target), sorted(c.before.items()), c.noop) for c in self.changes if c.gating]
        return hashlib.sha256(json.dumps([facts, self.refused]).encode()).hexdigest()[:16]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if not c.noop]


class Outcome(StrEnum):
    DONE = "done"
    ALREADY = "already"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """Its call was in flight when the process running it died: it may or may not have been made."""


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: Target
    outcome: Outcome
    message: str = ""
