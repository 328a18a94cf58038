"""A job's lease as the worker holding it sees it: renewed while the job runs, and given up the moment it can
no longer be known to be held, so a job never keeps acting while another worker runs it too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.jobs import Job, LeaseLost
from bot.core.ports import JobQueue

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, queue: JobQueue, job: Job, owner: str, seconds: float, now: Callable[[], datetime]) -> None:
        self.queue = queue
        self.job = job
        self.owner = owner
        self.seconds = seconds
        self.now = now
        self.held_until = now() + timedelta(seconds=seconds)
        self.lost: str | None = None

    def check(self) -> None:
        """The guard before a side effect. Past `held_until` (renewals failed, or this process was frozen
        longer than the lease) another worker may have taken the job over: stop rather than act twice."""
        if self.lost is None and self.now() >= self.held_until:
            self.lost = "its lease ran out before it could be renewed"
        if self.lost is not None:
            raise LeaseLost(f"job {self.job.id}: {self.lost}")

    async def keep(self, work: asyncio.Task[None]) -> None:
        """Renew at a third of the lease; cancel `work` once the lease is lost or can't be known to be held."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            asked = self.now()
            if asked >= self.held_until:
                self._lose(work, "the lease ran out before it could be renewed (frozen, or cut off from Redis)")
                return
            try:
                held = await self.queue.renew(self.job.id, self.owner, asked + timedelta(seconds=self.seconds))
            except Exception as exc:
                log.warning("job %s: could not renew its lease (%s); trying again", self.job.id, exc)
                continue
            if not held:
                self._lose(work, "another worker took it over")
                return
            self.held_until = asked + timedelta(seconds=self.seconds)

    def _lose(self, work: asyncio.Task[None], why: str) -> None:
        self.lost = why
        log.warning("job %s: %s; stopping it here, the holder finishes it", self.job.id, why)
        work.cancel()
