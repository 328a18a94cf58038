"""The playbook contract: parameters, a plan that says exactly what changes from what to what, execution that
reports each object's result, and the undo that reverses exactly what was done. Playbooks live in playbooks/,
one file each; this module is what they implement and what the core runs."""

from __future__ import annotations

import asyncio
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.config import IncidentConfig
from bot.core.errors import ClusterError, UsageError
from bot.core.ports import Cluster
from bot.models.plans import Change, Outcome, Plan, Result, Target

__all__ = ["Change", "Outcome", "Params", "Plan", "Playbook", "PlaybookRegistry", "Result", "Target"]


class Params(BaseModel):
    """Every playbook takes the cluster (a kubeconfig context; the configured default when omitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str | None = None


class Playbook(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[type[Params]]
    usage: ClassVar[str]
    """e.g. `cordon nodes=a,b | pool=<name> [cluster=<context>]`"""
    undo_with: ClassVar[str | None] = None
    """The playbook that reverses this one, given `undo_params`."""
    lasting: ClassVar[bool] = False
    """Its effect stays until undone (a cordon, a paused sync): the incident lists it as active, and resolving
    asks whether to undo it first."""
    flag: ClassVar[str | None] = None
    """While active, shown in the channel topic (e.g. "deploy freeze")."""
    DRY_RUN_CONCURRENCY: ClassVar[int] = 16

    def __init__(self, config: IncidentConfig) -> None:
        self.config = config

    @property
    def concurrency(self) -> int:
        """Writes of one phase run this many at a time (evictions in parallel, as kubectl drain does)."""
        return 1

    @abstractmethod
    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan: ...

    def planned(self, params: Params, cluster_name: str, changes: list[Change], **more: Any) -> Plan:
        """A plan of this playbook on that cluster, with the parameters as given (`more`: notes, refused, locks)."""
        return Plan(
            playbook=self.name,
            cluster=cluster_name,
            params=params.model_dump(exclude_none=True),
            changes=changes,
            **more,
        )

    async def check(self, cluster: Cluster, plan: Plan, *, as_user: str | None = None) -> Plan:
        """The API server's dry run (dryRun=All) of each write, recorded on the plan; a few at a time.

        As `as_user` when writes will impersonate someone: the dry run then meets that person's RBAC."""
        gate = asyncio.Semaphore(self.DRY_RUN_CONCURRENCY)

        waits: list[str] = []

        async def one(change: Change) -> str | None:
            async with gate:
                try:
                    await self.apply(cluster, change, dry_run=True, as_user=as_user)
                except ClusterError as exc:
                    if exc.status == 429:  # "not now" (a disruption budget), which the run waits out
                        waits.append(f"{change.target}: {exc} The run retries it.")
                        return None
                    return f"{change.target}: {exc}"
                return None

        found = await asyncio.gather(*(one(c) for c in plan.writes))
        notes = [*plan.notes, *sorted(waits)]
        return plan.model_copy(update={"dry_run": [f for f in found if f is not None], "notes": notes})

    async def run(self, cluster: Cluster, plan: Plan, *, as_user: str | None = None) -> list[Result]:
        """Each write once, phase by phase; each object's result, the API's own words when it fails.

        The core's runner does the same with each call recorded as a step; this is for tests and benchmarks.
        """
        results: dict[int, Result] = {}
        ok: set[str] = set()
        for phase in sorted({c.phase for c in plan.changes}):
            gate = asyncio.Semaphore(self.concurrency)

            async def one(i: int, change: Change, gate: asyncio.Semaphore = gate) -> None:
                async with gate:
                    blocked = unmet(change, ok)
                    results[i] = blocked or await self.attempt(cluster, change, as_user=as_user)
                    succeeded(ok, results[i])

            await asyncio.gather(*(one(i, c) for i, c in enumerate(plan.changes) if c.phase == phase))
        return [results[i] for i in range(len(plan.changes))]

    async def attempt(self, cluster: Cluster, change: Change, *, as_user: str | None) -> Result:
        """One change, for real: its result, never an exception for what the API refused."""
        if change.noop:
            return Result(target=change.target, outcome=Outcome.ALREADY)
        try:
            outcome = await self.apply(cluster, change, dry_run=False, as_user=as_user)
        except ClusterError as exc:
            outcome = Outcome.UNKNOWN if exc.unanswered else Outcome.FAILED
            return Result(target=change.target, outcome=outcome, message=str(exc))
        return Result(target=change.target, outcome=outcome)

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Parameters for `undo_with` that reverse exactly what `results` say was done; None if nothing was."""
        return None

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        """Write one change (an eviction or a patch); raise ClusterError with the API's words when refused.

        A playbook overrides this when a write needs more than one call (retrying an eviction a
        PodDisruptionBudget blocks) or when the API says the object is already in the target state (ALREADY).
        """
        if change.evict:
            await cluster.evict(change.target.ref, dry_run=dry_run, as_user=as_user)
        elif change.patch_type is not None:
            await cluster.patch(
                change.target.ref, change.patch, patch_type=change.patch_type, dry_run=dry_run, as_user=as_user
            )
        return Outcome.DONE


def succeeded(ok: set[str], result: Result) -> None:
    """Keep `ok`, the targets whose writes succeeded (done, or already so), as each result comes in: checking a
    change's needs then costs its needs, not a pass over every result (quadratic in a 600-pod drain)."""
    if result.outcome in (Outcome.DONE, Outcome.ALREADY):
        ok.add(str(result.target))


def unmet(change: Change, ok: AbstractSet[str]) -> Result | None:
    """The failed result for a change whose prerequisite write did not succeed, else None (go ahead)."""
    missing = [n for n in change.needs if n not in ok]
    if not missing:
        return None
    return Result(
        target=change.target, outcome=Outcome.FAILED, message=f"not attempted: {', '.join(missing)} did not succeed"
    )


class PlaybookRegistry:
    """Playbooks by name; the composition root fills it from the modules in playbooks/."""

    def __init__(self, command: str = "/incident") -> None:
        self.command = command
        """The team's slash command, so a usage line can be pasted back as it is."""
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
                raise UsageError(f"Parameters are key=value, got {token!r}. Usage: `{self.command} {playbook.usage}`")
            values[key.replace("-", "_")] = value
        try:
            return playbook, playbook.params.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise UsageError(f"{problems}. Usage: `{self.command} {playbook.usage}`") from None


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown parameter {where!r}"
    if error["type"] == "missing":
        return f"missing {where}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
