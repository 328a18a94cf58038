"""Durable post-ack work: a job is recorded before the ack, run by any replica, and resumed after a crash.

A job's id is deterministic (Slack's trigger id, a view id, an event id), so recording it twice is a no-op:
that is how retries and double submits are recognised. Its runner gets an `Op`: the key that makes every
write and post of this job idempotent, and whether an earlier attempt may have done part of it already.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.core.errors import FirebreakError


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    """Deterministic: the same request always makes the same id."""
    kind: str
    """Which runner executes it (see Worker)."""
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    attempts: int = 0
    """Attempts started so far, this one included once claimed; above 1 means an earlier one may have acted."""


class LeaseLost(Exception):
    """This worker no longer holds the job (another took it over, or it can't know it still holds it): it
    stops before its next side effect and leaves the job to the holder. Not a FirebreakError: nobody is told."""


@dataclass(frozen=True)
class Op:
    """One operation's identity: writes carry `key` so a repeat applies nothing twice; posts carry keys derived
    from it so a repeat finds what was already posted. `recovering` says an earlier attempt may have acted.

    `guard`, when set (by the worker holding the job's lease), is called before each side effect a repeat
    could not recognise, and raises LeaseLost once the lease is gone.
    """

    key: str
    recovering: bool = False
    guard: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def fresh(cls) -> Op:
        return cls(key=f"op:{uuid.uuid4().hex}")

    @classmethod
    def of(cls, job: Job, guard: Callable[[], None] | None = None) -> Op:
        return cls(key=f"job:{job.id}", recovering=job.attempts > 1, guard=guard)

    def check(self) -> None:
        """Before a side effect: stop here if this worker lost the job."""
        if self.guard is not None:
            self.guard()

    def sub(self, name: str) -> Op:
        """The same operation's step `name`, with its own key for writes (and the same guard)."""
        return Op(self.part(name), self.recovering, self.guard)

    def part(self, name: str) -> str:
        """A key for one side effect of this operation (a post, a reply)."""
        return f"{self.key}:{name}"


class TooLate(FirebreakError):
    """The store refused to record a job after its deadline: it was not recorded, and never will be."""


class NotSent(FirebreakError):
    """The store could not be reached at all: nothing was sent to it, so nothing was recorded."""


class TryLater(FirebreakError):
    """A transient failure (Slack or Redis unreachable): the job is run again after a pause, from where it was."""


JobRunner = Callable[[Job, Op], Awaitable[None]]
