"""Redis restarting, freezing and failing over under load: acks stay inside Slack's 3 s, nothing acknowledged is lost,
and once Redis answers again no command fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.models import NoteAdded
from handlers.slack import STORE_DOWN, STORE_UNSURE
from tests.conftest import make_settings
from tests.harness import Harness, eventually, running
from tests.redis_proc import RedisProcess, Sentinel
from tests.slack_standin import SlackStandIn


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


async def open_incident(h: Harness) -> str:
    await h.run("declare sev2 Redis under test")
    (incident,) = await h.fb.service.list_open()
    assert incident.channel_id
    return incident.channel_id


async def notes_in(h: Harness, prefix: str) -> list[str]:
    events = await h.fb.service.timeline(1)
    return [e.payload.text for e in events if isinstance(e.payload, NoteAdded) and e.payload.text.startswith(prefix)]


async def test_a_restarted_redis_costs_no_failed_command_once_it_answers(
    slack: SlackStandIn, own_redis: RedisProcess
) -> None:
    async with running(make_settings(slack, own_redis.url), slack) as h:
        channel = await open_incident(h)
        warm = await asyncio.gather(*(h.command(f"note warm {n}", channel=channel) for n in range(40)))
        assert all(ack.get("text") != STORE_DOWN for ack in warm)  # 40 pooled connections now open
        await h.settle()
        own_redis.restart()  # every pooled connection is now dead
        acks = await asyncio.gather(*(h.command(f"note after {n}", channel=channel) for n in range(40)))
        refused = [a for a in acks if a.get("text") == STORE_DOWN]
        assert refused == [], f"{len(refused)} of 40 commands failed after Redis came back"
        await h.settle()
        assert sorted(await notes_in(h, "after")) == sorted(f"after {n}" for n in range(40))
        for _ in range(20):  # readiness doesn't flap after the restart
            assert (await h.get("/readyz"))[0] == 200
            await asyncio.sleep(0.05)


async def test_restart_under_load_loses_nothing_acknowledged(slack: SlackStandIn, own_redis: RedisProcess) -> None:
    """Commands keep coming while Redis restarts: each is either acknowledged (and then lands) or told that
    nothing was done; none hangs past Slack's 3 s."""
    async with running(make_settings(slack, own_redis.url), slack) as h:
        channel = await open_incident(h)
        stop = asyncio.Event()
        outcomes: list[tuple[str, str | None, float]] = []

        async def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                text = f"load {worker}-{n}"
                started = time.monotonic()
                ack = await h.command(f"note {text}", channel=channel)
                outcomes.append((text, ack.get("text"), time.monotonic() - started))
                n += 1

        workers = [asyncio.create_task(load(w)) for w in range(8)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(own_redis.restart)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)
        await h.settle()
        accepted = {text for text, ack, _ in outcomes if ack is None}
        refused = {text for text, ack, _ in outcomes if ack == STORE_DOWN}
        unsure = {text for text, ack, _ in outcomes if ack == STORE_UNSURE}
        assert len(accepted) + len(refused) + len(unsure) == len(outcomes) and len(accepted) > 20
        landed = await notes_in(h, "load")
        assert len(landed) == len(set(landed)), "nothing landed twice"
        assert accepted <= set(landed), "every acknowledged note landed"
        assert not refused & set(landed), "nothing the user was told wasn't done was done"
        assert set(landed) <= accepted | unsure
        assert max(seconds for _, _, seconds in outcomes) < 3.0, "an ack waited past Slack's limit"


async def test_a_frozen_redis_gets_the_clear_message_and_keeps_what_was_acknowledged(
    slack: SlackStandIn, own_redis: RedisProcess
) -> None:
    async with running(make_settings(slack, own_redis.url), slack) as h:
        channel = await open_incident(h)
        own_redis.freeze()
        try:
            frozen = await asyncio.gather(*(h.command(f"note frozen {n}", channel=channel) for n in range(10)))
        finally:
            own_redis.thaw()
        assert all(ack.get("text") == STORE_DOWN for ack in frozen), "told, not left to time out"
        ack = await h.command("note thawed", channel=channel)
        assert ack.get("text") != STORE_DOWN
        await h.settle()
        assert await notes_in(h, "thawed") == ["thawed"]
        assert await notes_in(h, "frozen") == [], "nothing was done, as the user was told"


async def test_sentinel_failover_under_a_running_bot(slack: SlackStandIn, tmp_path: Path) -> None:
    master = RedisProcess(tmp_path / "master", args=("--repl-diskless-sync-delay", "0")).start()
    replica = RedisProcess(tmp_path / "replica", args=("--replicaof", "127.0.0.1", str(master.port))).start()
    sentinel = Sentinel(tmp_path / "sentinel", master)
    try:
        async with running(make_settings(slack, sentinel.url), slack) as h:
            channel = await open_incident(h)
            await h.run("note before failover", channel=channel)
            # Replication is asynchronous: wait until the replica has everything, as a real failover assumes.
            assert await asyncio.to_thread(master.wait_replicas, 1) == 1
            master.stop()
            await eventually(
                lambda: sentinel.master_port() == replica.port, within=15, what="sentinel never promoted the replica"
            )
            await eventually(
                lambda: _acked(h, channel), within=10, what="the bot never reached the new master", interval=0.2
            )
            await h.settle()
            assert "before failover" in await notes_in(h, "before")
            assert await notes_in(h, "after failover")
    finally:
        sentinel.stop()
        replica.stop()
        master.stop()


async def _acked(h: Harness, channel: str) -> bool:
    return (await h.command("note after failover", channel=channel)).get("text") != STORE_DOWN
