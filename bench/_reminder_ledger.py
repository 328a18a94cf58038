"""What bench/reminders.py's scheduler instances noted in the ledger, read back and counted: losses, duplicates,
re-runs after the kill and lateness."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from bench._reminder_worker import COMPLETED, FINISHED, STARTED

CLIENT_COMMANDS = frozenset({"evalsha", "eval", "script|load", "zrange", "zcard", "zcount", "subscribe", "ping"})
"""Commands the scheduler sends itself; every other one in INFO commandstats runs inside its Lua scripts."""


@dataclass
class Run:
    instance: str
    late: float
    """Seconds from the due time to the start of this run (wall clock)."""


@dataclass
class Tally:
    seeded: int
    finished: dict[str, list[Run]] = field(default_factory=dict)
    """Job id -> its runs that got past the lease check and recorded their effect."""
    started: dict[str, dict[str, int]] = field(default_factory=dict)
    """Instance -> job id -> runs started."""
    completed: dict[str, dict[str, int]] = field(default_factory=dict)
    """Instance -> job id -> completions recorded in the queue."""
    losses: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    """Jobs run that were never seeded (none should be)."""
    duplicates: list[str] = field(default_factory=list)
    cut_mid_run: list[str] = field(default_factory=list)
    """Started by the killed instance, never finished there, run again by another: a legitimate re-run."""
    cut_before_complete: list[str] = field(default_factory=list)
    """Finished by the killed instance but killed before the queue recorded it done, so run again: a legitimate
    re-run for the scheduler (the real runner's posts are keyed by the job, so its second run finds the post)."""
    unnoted: list[str] = field(default_factory=list)
    """Finished by the killed instance, killed before the ledger heard of the completion, and never run again (so
    the queue had recorded it done): one run, counted as such."""
    lateness: list[float] = field(default_factory=list)
    """Per reminder: how late its first finished run started."""
    rerun_lateness: list[float] = field(default_factory=list)
    """Per re-run reminder: how late the run that finished it started."""

    @property
    def reruns(self) -> list[str]:
        return self.cut_mid_run + self.cut_before_complete

    def runs_by(self, instance: str) -> tuple[int, int, int]:
        """Runs started, finished and completed by `instance`."""
        started = sum(self.started.get(instance, {}).values())
        finished = sum(1 for runs in self.finished.values() for r in runs if r.instance == instance)
        completed = sum(self.completed.get(instance, {}).values())
        return started, finished, completed


async def tally(ledger: aioredis.Redis, seeded: set[str], instances: list[str], killed: str) -> Tally:
    t = Tally(len(seeded))
    for name in instances:
        t.started[name] = {str(k): int(v) for k, v in (await ledger.hgetall(STARTED.format(name=name))).items()}
        t.completed[name] = {str(k): int(v) for k, v in (await ledger.hgetall(COMPLETED.format(name=name))).items()}
    finished: dict[str, list[Run]] = defaultdict(list)
    for line in await ledger.lrange(FINISHED, 0, -1):
        job_id, instance, late = str(line).split(" ")
        finished[job_id].append(Run(instance, float(late)))
    t.finished = dict(finished)
    t.strays = sorted(set(t.finished) - seeded)
    for job_id in sorted(seeded):
        runs = t.finished.get(job_id, [])
        if not runs:
            t.losses.append(job_id)
            continue
        t.lateness.append(min(r.late for r in runs))
        by_killed = [r for r in runs if r.instance == killed]
        killed_completed = t.completed[killed].get(job_id, 0) > 0
        started_there = t.started[killed].get(job_id, 0) > 0
        elsewhere = [r for r in runs if r.instance != killed]
        if started_there and not killed_completed and elsewhere:
            (t.cut_before_complete if by_killed else t.cut_mid_run).append(job_id)
            t.rerun_lateness.append(min(r.late for r in elsewhere))
        elif by_killed and not killed_completed:
            t.unnoted.append(job_id)
        # A run counts once the queue recorded it done, or when it was not the killed instance's (a survivor
        # that finished a run and still had it run again would be the scheduler's fault, not the kill's).
        counted = len(elsewhere) + (len(by_killed) if killed_completed else 0)
        completions = sum(c.get(job_id, 0) for c in t.completed.values())
        if counted > 1 or completions > 1:
            t.duplicates.append(job_id)
    return t
