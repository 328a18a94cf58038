"""One scheduler instance of bench/reminders.py: the real Worker over the real RedisJobQueue, in a process of its own.

`python -m bench._reminder_worker --redis URL --ledger URL --name w1` runs reminder jobs until SIGTERM (or until
the bench SIGKILLs it). Its runner stands in for Reminding.run_job so that the scheduler is what is measured:
it notes when it started (and how late that was, on the wall clock), holds the job as long as a Slack post
would take, checks its lease like every real side effect does, and notes that it finished. The queue notes
each completion once RedisJobQueue.complete has returned. The notes go to a separate Redis (the ledger), so
the scheduler's Redis sees only the scheduler's commands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time

import redis.asyncio as aioredis

from bot.adapters.redis_connect import BACKGROUND, TRANSIENT, connect
from bot.adapters.redis_jobs import RedisJobQueue
from bot.adapters.redis_store import REMINDER_JOB
from bot.core.jobs import Job, JobRunner, Op
from bot.core.worker import Worker

STARTED = "bench:started:{name}"
"""Hash: job id -> runs this instance started."""
FINISHED = "bench:finished"
"""List of '<job id> <instance> <lateness s>': a run that got past its lease check and recorded its effect."""
COMPLETED = "bench:completed:{name}"
"""Hash: job id -> completions this instance recorded in the queue (after RedisJobQueue.complete returned)."""
READY = "bench:ready"
"""Set of instances whose worker loop is running."""


class LedgerQueue(RedisJobQueue):
    """The real queue; a completion is noted in the ledger once the queue has recorded it."""

    def __init__(self, client: aioredis.Redis, ledger: aioredis.Redis, name: str) -> None:
        super().__init__(client)
        self.ledger = ledger
        self.completed = COMPLETED.format(name=name)

    async def complete(self, job_id: str, owner: str) -> None:
        await super().complete(job_id, owner)
        await self.ledger.hincrby(self.completed, job_id, 1)


def reminder_runner(ledger: aioredis.Redis, name: str, hold: float) -> JobRunner:
    started = STARTED.format(name=name)

    async def run(job: Job, op: Op) -> None:
        late = time.time() - job.created_at.timestamp()
        await ledger.hincrby(started, job.id, 1)
        await asyncio.sleep(hold)  # the Slack post this stands in for
        op.check()
        await ledger.rpush(FINISHED, f"{job.id} {name} {late!r}")

    return run


async def main(redis_url: str, ledger_url: str, name: str, lease: float, concurrency: int, hold: float) -> None:
    # The background profile, as `firebreak serve` gives its worker.
    client = connect(redis_url, BACKGROUND)
    ledger = aioredis.from_url(ledger_url, decode_responses=True)
    queue = LedgerQueue(client, ledger, name)
    run = reminder_runner(ledger, name, hold)
    worker = Worker(
        queue,
        {REMINDER_JOB: run},
        lease_seconds=lease,
        concurrency=concurrency,
        transient=TRANSIENT,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await queue.ping()
        loop = asyncio.create_task(worker.run(stop))
        await ledger.sadd(READY, name)
        await loop
        await worker.shutdown()
    finally:
        await queue.close()
        await client.aclose()
        await ledger.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--hold-ms", type=float, default=100.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {args.name} %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(args.redis, args.ledger, args.name, args.lease, args.concurrency, args.hold_ms / 1000))
