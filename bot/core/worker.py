"""The worker: claims due jobs from the queue on any replica, keeps their leases alive, retries what failed briefly.

It sleeps until the next due time (or a lease that may run out), or until a job is enqueued here or on
another replica; it never polls on a fixed beat shorter than SAFETY_POLL_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.core.jobs import Job, JobRunner, LeaseLost, Op, TryLater
from bot.core.lease import Lease
from bot.core.metrics import Metrics
from bot.core.ports import JobQueue, utcnow

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 5.0
"""Longest sleep without a look at the queue: covers a lost wake-up (a pub/sub message missed on reconnect)."""
MAX_ATTEMPTS = 8
"""Attempts for a job failing in ways nobody expected (a bug): then it is given up and logged."""
MAX_RETRY_AGE = timedelta(hours=6)
"""A job failing because Slack or Redis is away is retried this long: an outage delays it, never drops it."""
OUTAGE_RETRY_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0


class NoRunner(Exception):
    """A job of a kind this version has no runner for."""


def backoff(attempts: int) -> float:
    """0.5 s, 1 s, 2 s ... capped: a brief outage costs seconds, a long one doesn't hammer what is down."""
    return float(min(BACKOFF_CAP_SECONDS, 0.5 * 2 ** max(0, attempts - 1)))


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        runners: Mapping[str, JobRunner],
        *,
        lease_seconds: float = 15.0,
        concurrency: int = 32,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
        wall: Callable[[], datetime] = utcnow,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        """`transient`: what the store raises while it is away (the composition root knows its adapter)."""
        self.queue = queue
        self.transient: tuple[type[BaseException], ...] = (TryLater, *transient)
        self.runners = dict(runners)
        self.lease_seconds = lease_seconds
        self.metrics = metrics
        self.now = now
        self.wall = wall
        """Backoffs are counted on the wall clock even when `now` runs ahead of it (a test's incident clock)."""
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A job was enqueued by this process: look now instead of at the next due time."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until `stop` is set; then let running jobs finish (see `shutdown`)."""
        down_since: float | None = None
        while not stop.is_set():
            try:
                claimed = await self._claim_available()
            except Exception as exc:
                # One line when the store goes away and one when it is back, not one per attempt.
                if down_since is None:
                    down_since = asyncio.get_running_loop().time()
                    log.warning("cannot reach the job queue (%s: %s); retrying", type(exc).__name__, exc)
                claimed = 0
                await self._pause(stop, OUTAGE_RETRY_SECONDS)
                continue
            if down_since is not None:
                log.warning("job queue reachable again after %.1f s", asyncio.get_running_loop().time() - down_since)
                down_since = None
            if claimed:
                continue
            await self._sleep(stop)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def _claim_available(self) -> int:
        claimed = 0
        while not self._slots.locked():
            job = await self.queue.claim(self.owner, self.now(), self.lease_seconds)
            if job is None:
                break
            await self._slots.acquire()
            task = asyncio.create_task(self._execute(job), name=f"firebreak:job:{job.kind}")
            self._running[job.id] = task
            if self.metrics:
                self.metrics.background_tasks.inc()
            claimed += 1
        return claimed

    async def _sleep(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        if self._slots.locked():
            # Every slot busy: nothing can be claimed until a job ends (which sets the wake event).
            await self._wait_any(stop.wait(), self._wake.wait(), seconds=SAFETY_POLL_SECONDS)
            return
        timeout = SAFETY_POLL_SECONDS
        with contextlib.suppress(Exception):
            due = await self.queue.next_due()
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self.now()).total_seconds()))
        if timeout <= 0:
            return
        await self._wait_any(stop.wait(), self._wake.wait(), self.queue.wait(timeout), seconds=timeout + 1)

    @staticmethod
    async def _wait_any(*waits: Coroutine[Any, Any, Any], seconds: float) -> None:
        waiters = [asyncio.create_task(w) for w in waits]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _execute(self, job: Job) -> None:
        lease = Lease(self.queue, job, self.owner, self.lease_seconds, self.now)
        runner = self.runners.get(job.kind)
        work = asyncio.create_task(self._run(runner, job, Op.of(job, lease.check)), name=f"firebreak:run:{job.id}")
        heartbeat = asyncio.create_task(lease.keep(work), name="firebreak:lease")
        outcome = "ok"
        try:
            try:
                await work
            except (LeaseLost, asyncio.CancelledError):
                me = asyncio.current_task()
                if lease.lost is not None and not (me is not None and me.cancelling()):
                    outcome = "lease_lost"  # not ours any more: the holder completes it
                    return
                work.cancel()
                outcome = "interrupted"
                await asyncio.shield(self.queue.release(job.id, self.owner, self.now()))
                raise
            except Exception as exc:
                outcome = await self._failed(job, exc)
                return
            await self.queue.complete(job.id, self.owner)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Could not record the outcome (the store is down): the lease runs out and the job runs again.
            log.exception("job %s: could not record its outcome; it will run again", job.id)
            outcome = "unrecorded"
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self._running.pop(job.id, None)
            self._slots.release()
            if self.metrics:
                self.metrics.jobs.labels(job.kind, outcome).inc()
                self.metrics.background_tasks.dec()
            self._wake.set()

    @staticmethod
    async def _run(runner: JobRunner | None, job: Job, op: Op) -> None:
        if runner is None:
            raise NoRunner(f"job {job.id} has kind {job.kind!r}, which no runner handles")
        await runner(job, op)

    async def _failed(self, job: Job, exc: Exception) -> str:
        delay = backoff(job.attempts)
        if isinstance(exc, NoRunner):
            log.error("%s; setting it aside", exc)
            await self.queue.complete(job.id, self.owner)
            return "dropped"
        if isinstance(exc, self.transient):
            if self.now() - job.created_at > MAX_RETRY_AGE:
                log.error("job %s: still failing after %s (%s); giving up", job.id, MAX_RETRY_AGE, exc)
                await self.queue.complete(job.id, self.owner)
                return "gave_up"
            log.warning("job %s: %s; trying again in %.1f s", job.id, exc, delay)
        elif job.attempts >= MAX_ATTEMPTS:
            log.error("job %s failed %d times; giving up: %s", job.id, job.attempts, exc, exc_info=exc)
            await self.queue.complete(job.id, self.owner)
            return "gave_up"
        else:
            log.error("job %s failed (attempt %d); trying again in %.1f s", job.id, job.attempts, delay, exc_info=exc)
        await self.queue.release(job.id, self.owner, self.wall() + timedelta(seconds=delay))
        return "retry"

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a grace period, not a cancel scope
        """Wait until every job due by now is done, here or anywhere, and nothing runs here (tests, benchmarks).

        Jobs due later (a request's expiry in 15 minutes) are left for their time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            # A job stays in the queue until it completes, so an empty queue means nothing is left to run.
            # With the store unreachable nothing can be queued either: then only what runs here counts.
            try:
                # Leased jobs are scored by their lease's end: count those, whichever replica runs them.
                pending = await self.queue.pending(due_by=self.now() + timedelta(seconds=self.lease_seconds + 1))
            except Exception:
                pending = 0
            if pending == 0 and not self._running:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError(f"jobs still running or due after {timeout:g} s: {sorted(self._running)}")

    async def shutdown(self, grace: float = 20.0) -> None:
        """Let running jobs finish within `grace`; hand back the rest so another replica resumes them at once."""
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=grace)
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
