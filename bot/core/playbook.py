"""The playbook contract: parameters, a plan that says exactly what changes from what to what, execution that
reports each object's result, and the undo that reverses exactly what was done. Playbooks live in playbooks/,
one file each; this module is what they implement and what the core runs."""

from __future__ import annotations

import hashlib
import json
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.config import IncidentConfig
from bot.core.errors import ClusterError, UsageError
from bot.core.ports import Cluster, ObjectRef, PatchType


class Params(BaseModel):
    """Every playbook takes the cluster (a kubeconfig context; the configured default when omitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str | None = None


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

    @property
    def fingerprint(self) -> str:
        """The state the plan was made from: approval re-plans and acts only if this is unchanged."""
        facts = [(str(c.target), sorted(c.before.items()), c.noop) for c in self.changes]
        return hashlib.sha256(json.dumps([facts, self.refused]).encode()).hexdigest()[:16]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if not c.noop]


class Outcome(StrEnum):
    DONE = "done"
    ALREADY = "already"
    FAILED = "failed"


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: Target
    outcome: Outcome
    message: str = ""


class Playbook(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[type[Params]]
    usage: ClassVar[str]
    """e.g. `cordon nodes=a,b | pool=<name> [cluster=<context>]`"""
    undo_with: ClassVar[str | None] = None
    """The playbook that reverses this one, given `undo_params`."""

    def __init__(self, config: IncidentConfig) -> None:
        self.config = config

    @abstractmethod
    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan: ...

    async def check(self, cluster: Cluster, plan: Plan) -> Plan:
        """The API server's dry run (dryRun=All) of each write, recorded on the plan."""
        refused = []
        for change in plan.writes:
            try:
                await self._apply(cluster, change, dry_run=True, as_user=None)
            except ClusterError as exc:
                refused.append(f"{change.target}: {exc}")
        return plan.model_copy(update={"dry_run": refused})

    async def run(self, cluster: Cluster, plan: Plan, *, as_user: str | None = None) -> list[Result]:
        """Each write once, in order; each object's result, the API's own words when it fails."""
        results = []
        for change in plan.changes:
            if change.noop:
                results.append(Result(target=change.target, outcome=Outcome.ALREADY))
                continue
            try:
                await self._apply(cluster, change, dry_run=False, as_user=as_user)
            except ClusterError as exc:
                results.append(Result(target=change.target, outcome=Outcome.FAILED, message=str(exc)))
            else:
                results.append(Result(target=change.target, outcome=Outcome.DONE))
        return results

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Parameters for `undo_with` that reverse exactly what `results` say was done; None if nothing was."""
        return None

    @staticmethod
    async def _apply(cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> None:
        if change.evict:
            await cluster.evict(change.target.ref, dry_run=dry_run, as_user=as_user)
        elif change.patch_type is not None:
            await cluster.patch(
                change.target.ref, change.patch, patch_type=change.patch_type, dry_run=dry_run, as_user=as_user
            )


class PlaybookRegistry:
    """Playbooks by name; the composition root fills it from the modules in playbooks/."""

    def __init__(self) -> None:
        self._playbooks: dict[str, Playbook] = {}

    def add(self, playbook: Playbook) -> None:
        if playbook.name in self._playbooks:
            raise ValueError(f"playbook {playbook.name!r} registered twice")
        self._playbooks[playbook.name] = playbook

    def get(self, name: str) -> Playbook:
        found = self._playbooks.get(name)
        if found is None:
            known = ", ".join(sorted(self._playbooks)) or "none"
            raise UsageError(f"There is no playbook {name!r}. Playbooks: {known}.")
        return found

    def __iter__(self) -> Iterator[Playbook]:
        return iter(sorted(self._playbooks.values(), key=lambda p: p.name))

    def parse(self, name: str, text: str) -> tuple[Playbook, Params]:
        """`key=value ...` into the playbook's parameter model; a mistake gets its usage line."""
        playbook = self.get(name)
        values: dict[str, Any] = {}
        for token in shlex.split(text):
            key, sep, value = token.partition("=")
            if not sep or not key:
                raise UsageError(f"Parameters are key=value, got {token!r}. Usage: `{playbook.usage}`")
            values[key.replace("-", "_")] = value
        try:
            return playbook, playbook.params.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise UsageError(f"{problems}. Usage: `{playbook.usage}`") from None


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown parameter {where!r}"
    if error["type"] == "missing":
        return f"missing {where}"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"
