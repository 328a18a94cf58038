"""Two `firebreak serve` processes share the reminders; the one that claimed a reminder is SIGKILLed after Slack
took the post but before it heard back. The other takes the job over when the lease runs out, finds the post by
its key, and records it: one reminder in the channel, one in the timeline."""

from __future__ import annotations

import os
import signal
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis_store import RedisIncidentStore
from bot.core.config import IncidentConfig
from bot.core.ports import utcnow
from bot.core.schedule import Schedule
from tests.conftest import free_port
from tests.harness import eventually
from tests.slack_standin import SlackStandIn
from tests.test_crash_recovery import SLUG, declare, queue_empty, serve


def is_reminder(args: dict[str, Any]) -> bool:
    return "a status update for INC-1 is due" in str(args.get("text", ""))


async def test_kill_the_replica_posting_a_reminder_then_the_other_finishes_it_once(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    store = RedisIncidentStore(client, schedule=Schedule(IncidentConfig()).stamp)
    port_a, port_b = free_port(), free_port()
    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(serve(slack, redis_url, tmp_path, port_a))
            b = await stack.enter_async_context(serve(slack, redis_url, tmp_path, port_b))
            await declare(port_a, slack)
            await queue_empty(redis_url)
            channel = next(c for c in slack.channels.values() if SLUG in c.name)
            hold = slack.hold("chat.postMessage", after=True, when=is_reminder)
            # The IC's update comes due two seconds from now (as if its cadence ran out): its job is scheduled
            # by the same atomic write that moves the due time.
            incident = await store.get(1)
            assert incident is not None
            await store.save(incident.model_copy(update={"next_update_due": utcnow() + timedelta(seconds=2)}), [], "t")
            await eventually(lambda: slack.held, within=15, what="no replica posted the reminder")
            jobs = [str(j) for j in await client.zrange("fb:jobs:due", 0, -1)]
            job = next(j for j in jobs if j.startswith("reminder:1:"))
            owner = await client.hget(f"fb:job:{job}", "owner")
            pid = int(str(owner).split(":")[1])
            holder, other = (a, b) if pid == a.pid else (b, a)
            assert pid in (a.pid, b.pid)
            os.kill(holder.pid, signal.SIGKILL)
            await holder.wait()
            hold.release.set()  # Slack answers into a closed connection: the post exists, unrecorded

            async def recorded() -> bool:
                current = await store.get(1)
                return current is not None and current.reminder.missed == 1

            await eventually(recorded, within=20, what="the surviving replica never finished the reminder")
            assert other.returncode is None
        posted = [m for m in channel.messages if "a status update for INC-1 is due" in m.get("text", "")]
        assert len(posted) == 1, "one reminder in the channel"
        reminded = [e for e in await store.timeline(1) if e.kind.value == "reminder"]
        assert len(reminded) == 1, "one reminder in the timeline"
        current = await store.get(1)
        assert current is not None and current.reminder.message_ts == posted[0]["ts"], "its buttons are tracked"
    finally:
        await client.aclose()
