"""10,000 reminders due over 60 s, three scheduler instances on one Redis, one SIGKILLed halfway: lateness,
duplicates, losses and Redis commands per reminder.

The reminders are seeded the way firebreak schedules them: each incident is saved through RedisIncidentStore with
the real Schedule, so its reminder job (`reminder:<incident>:<ms>`, due at `reminder.at`) is created by the SAVE
script in the same step as the record. Three processes (bench/_reminder_worker.py) each run the real Worker
over the real RedisJobQueue, with its claim, lease, due-time sleep and pub/sub wake; their runner notes when
each job started and finished in a separate ledger Redis, so what is measured is the scheduler, not Slack.
Targets, each printed: p99 lateness < 500 ms, 0 duplicates, 0 losses; the bench exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench._reminder_ledger import CLIENT_COMMANDS, Tally, tally
from bench._reminder_worker import FINISHED, READY
from bench.ack_latency import pct, spawn
from bot.adapters.redis_keys import Keys
from bot.adapters.redis_store import RedisIncidentStore, reminder_job
from bot.core.config import IncidentConfig
from bot.core.ports import utcnow
from bot.core.schedule import Action, Due, Schedule
from bot.models import IC, Actor, Incident
from bot.root.settings import Settings
from tests.conftest import redis_command
from tests.harness import eventually
from tests.redis_proc import RedisProcess

P99_TARGET_MS = 500.0
INSTANCES = ("w1", "w2", "w3")
KILLED = "w2"
LOG = Path(tempfile.gettempdir()) / "firebreak-bench-reminders-{name}.log"


@dataclass(frozen=True)
class Plan:
    reminders: int = 10_000
    spread: float = 60.0
    """Seconds over which the due times are spread evenly."""
    lead: float = 10.0
    """Seconds from the start of seeding to the first due time: the seeding and the instances' start fit in it."""
    kill_at: float = 30.0
    """Seconds after the first due time when one instance is SIGKILLed."""
    lease: float = Settings.model_fields["job_lease_seconds"].default
    """The workers' lease (firebreak's default, FIREBREAK_JOB_LEASE): a killed instance's jobs are taken over
    this late, still within the 60 s, so the run takes no longer than with a shorter one."""
    concurrency: int = 32
    """Jobs each instance runs at once (the Worker's default)."""
    hold_ms: float = 100.0
    """How long the runner holds each job, as a Slack post would: jobs are in flight when the kill comes."""


def bench_incident(number: int, due: datetime, now: datetime) -> Incident:
    """Open, with an IC and recent activity, so the next update (`due`) is the first thing the schedule has."""
    return Incident(
        id=number,
        title=f"Reminder bench {number}",
        severity=3,
        declared_by=Actor.user("UBENCH"),
        declared_at=now - timedelta(minutes=30),
        roles={IC: "UBENCHIC"},
        last_update_at=now - timedelta(minutes=5),
        next_update_due=due,
        last_activity_at=now,
    )


async def seed(client: aioredis.Redis, plan: Plan, first_due_ms: int) -> dict[str, float]:
    """Save the incidents; returns each reminder job's id and due time (epoch seconds)."""
    schedule = Schedule(IncidentConfig())
    store = RedisIncidentStore(client, schedule=schedule.stamp)
    now = utcnow()
    expected: dict[str, float] = {}
    slots = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        due = datetime.fromtimestamp((first_due_ms + round(i * plan.spread * 1000 / plan.reminders)) / 1000, UTC)
        incident = bench_incident(i + 1, due, now)
        if schedule.next(incident) != Due(due, Action.REMIND):
            raise AssertionError(f"INC-{i + 1}: the schedule's first due time is not the update at {due}")
        job = reminder_job(schedule.stamp(incident))
        assert job is not None
        expected[job.id] = due.timestamp()
        async with slots:
            await store.insert(incident, [], f"bench:seed:{i + 1}")

    await asyncio.gather(*(one(i) for i in range(plan.reminders)))
    queued = {str(m) for m in await client.zrange(Keys().jobs_due, 0, -1)}
    if queued != set(expected):
        raise AssertionError(f"the SAVE script queued {len(queued)} reminder jobs, not the {len(expected)} expected")
    return expected


def commands(stats: Mapping[str, Any]) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items() if isinstance(v, dict)}


async def finished_count(ledger: aioredis.Redis, at_least: int) -> int:
    """Reminders finished at least once (read in full only once enough runs were noted)."""
    if int(await ledger.llen(FINISHED)) < at_least:
        return 0
    return len({str(line).split(" ", 1)[0] for line in await ledger.lrange(FINISHED, 0, -1)})


async def main(plan: Plan) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp) / "redis").start()
        sock = Path(tmp) / "ledger.sock"
        ledger_proc = await spawn(*redis_command(sock))
        await eventually(sock.exists, within=5, what="the ledger redis-server never opened its socket")
        client = aioredis.from_url(server.url, decode_responses=True)
        ledger = aioredis.from_url(f"unix://{sock}", decode_responses=True)
        procs: dict[str, asyncio.subprocess.Process] = {}
        try:
            seeding = time.time()
            first_due = math.ceil((seeding + plan.lead) * 1000)
            expected = await seed(client, plan, first_due)
            seeded_in = time.time() - seeding
            t0 = first_due / 1000
            for name in INSTANCES:
                args = ["--redis", server.url, "--ledger", f"unix://{sock}", "--name", name]
                args += ["--lease", str(plan.lease), "--concurrency", str(plan.concurrency)]
                args += ["--hold-ms", str(plan.hold_ms)]
                log = Path(str(LOG).format(name=name))
                procs[name] = await spawn(sys.executable, "-m", "bench._reminder_worker", *args, log=log)

            async def ready() -> bool:
                return int(await ledger.scard(READY)) == len(INSTANCES)

            await eventually(ready, within=max(0.0, t0 - time.time() - 0.2), what="the instances were not ready")
            ready_at = time.time()
            before = commands(await client.info("commandstats"))
            await asyncio.sleep(t0 + plan.kill_at - time.time())
            procs[KILLED].kill()
            killed_at = time.time()
            await procs[KILLED].wait()
            jobs_due = Keys().jobs_due

            async def drained() -> bool:
                n = plan.reminders
                return await finished_count(ledger, n) >= n and int(await client.zcard(jobs_due)) == 0

            deadline = t0 + plan.spread + plan.lease + 30 - time.time()
            try:
                await eventually(drained, within=deadline, what="the reminders did not all run", interval=0.2)
            except AssertionError as exc:
                print(f"{exc}: counting what ran")
            drained_at = time.time()
            after = commands(await client.info("commandstats"))
            left = int(await client.zcard(jobs_due))
            dead = int(await client.scard(Keys().jobs_dead))
            counted = await tally(ledger, set(expected), list(INSTANCES), KILLED)
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.terminate()
            await asyncio.gather(*(p.wait() for p in procs.values()))
            await client.aclose()
            await ledger.aclose()
            ledger_proc.terminate()
            await ledger_proc.wait()
            server.stop()
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in after}
    delta.pop("info", None)  # the bench's own INFO calls
    timing = (seeded_in, ready_at - t0, killed_at - t0, drained_at - t0)
    return report(plan, counted, delta, timing, left, dead)


def report(plan: Plan, t: Tally, delta: dict[str, int], timing: tuple[float, ...], left: int, dead: int) -> int:
    seeded_in, ready_at, killed_at, drained_at = timing
    n = plan.reminders
    print(
        f"Measured: the scheduler (Worker claim/lease/due-time sleep/pub-sub wake/complete over RedisJobQueue)\n"
        f"  in {len(INSTANCES)} processes, lease {plan.lease:g} s (firebreak's default), {plan.concurrency} jobs at "
        f"once each; the runner holds each job {plan.hold_ms:g} ms in place of the Slack post\n"
        "  (no Slack, no Reminding.run_job). Lateness: start of a job's first finished run minus its due time.\n"
        f"seeded {n} incidents through RedisIncidentStore.insert (SAVE creates each reminder job) in "
        f"{seeded_in:.1f} s;\n  due evenly over {plan.spread:g} s from T0; instances ready at T0{ready_at:+.1f} s"
    )
    print(f"{KILLED} SIGKILLed at T0{killed_at:+.2f} s; all run and the queue empty at T0{drained_at:+.2f} s")
    print(f"{'instance':10}{'started':>9}{'finished':>10}{'completed':>11}")
    for name in INSTANCES:
        started, finished, completed = t.runs_by(name)
        print(f"{name + (' (killed)' if name == KILLED else ''):10}{started:>9}{finished:>10}{completed:>11}")
    lat = t.lateness
    if lat:
        print(
            f"lateness over {len(lat)} reminders: p50 {pct(lat, 0.5):.1f} ms, p90 {pct(lat, 0.9):.1f} ms, "
            f"p99 {pct(lat, 0.99):.1f} ms, max {1000 * max(lat):.1f} ms; early (negative): {sum(x < 0 for x in lat)}"
        )
    rerun = t.rerun_lateness
    worst = f", lateness of their finishing run max {1000 * max(rerun):.0f} ms" if rerun else ""
    print(
        f"re-run after the kill: {len(t.reruns)} ({len(t.cut_mid_run)} killed mid-run, "
        f"{len(t.cut_before_complete)} finished but killed before the queue recorded them done){worst};\n"
        f"  finished by {KILLED}, killed before the ledger heard of its completion, not run again: {len(t.unnoted)}"
    )
    print(
        f"duplicates (two counted completions of one job): {len(t.duplicates)}; losses (seeded, never run): "
        f"{len(t.losses)}; left in the queue: {left}; set aside as dead: {dead}; unexpected jobs run: {len(t.strays)}"
    )
    total = sum(delta.values())
    client = sum(v for c, v in delta.items() if c in CLIENT_COMMANDS)
    top = ", ".join(f"{c} {v / n:.2f}" for c, v in sorted(delta.items(), key=lambda cv: -cv[1])[:10] if v)
    print(
        f"Redis commands per reminder (INFO commandstats from ready to drained / {n}): {total / n:.2f}, of which "
        f"{client / n:.2f} sent by the instances and {(total - client) / n:.2f} inside Lua scripts; {top}"
    )
    p99 = pct(lat, 0.99) if lat else math.inf
    checks = [
        (f"p99 lateness < {P99_TARGET_MS:.0f} ms ({p99:.1f} ms)", p99 < P99_TARGET_MS),
        (f"0 duplicates ({len(t.duplicates)})", not t.duplicates),
        (f"0 losses ({len(t.losses)})", not t.losses and len(lat) == n),
    ]
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'} {what}")
    for label, ids in (("duplicated", t.duplicates), ("lost", t.losses)):
        if ids:
            print(f"{label}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=Plan.reminders)
    parser.add_argument("--spread", type=float, default=Plan.spread, help="seconds the due times are spread over")
    parser.add_argument("--lease", type=float, default=Plan.lease)
    parser.add_argument("--hold-ms", type=float, default=Plan.hold_ms)
    a = parser.parse_args()
    plan = Plan(reminders=a.reminders, spread=a.spread, kill_at=a.spread / 2, lease=a.lease, hold_ms=a.hold_ms)
    sys.exit(asyncio.run(main(plan)))
