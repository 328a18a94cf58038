"""Ack latency while Redis freezes (SIGSTOP for 5 s) and restarts, under a steady load of slash commands.

firebreak (`firebreak serve`), a redis-server of its own and the Slack stand-in run as separate processes;
this process sends signed `/incident note` commands from 20 concurrent senders and times every ack.
Targets, each checked and printed; the bench exits 1 when one is missed:
- during the freeze every ack arrives within 2.5 s (Slack gives up at 3 s) and says nothing was done;
- once the restarted Redis answers, no command fails;
- every note that was acknowledged as recorded is in the timeline, once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis

from bench.ack_latency import due_now, pct, spawn
from handlers.slack import STORE_DOWN, STORE_UNSURE
from tests.conftest import free_port
from tests.harness import BOT_TOKEN, eventually, firebreak_env, sign, wait_ready
from tests.redis_proc import RedisProcess

FREEZE_MAX_ACK_MS = 2500.0
SENDERS = 20
LOG = Path(tempfile.gettempdir()) / "firebreak-bench-faults.log"


@dataclass
class Ack:
    sent: float
    seconds: float
    text: str
    note: str


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp) / "redis").start()
        slack_port, fb_port = free_port(), free_port()
        py = sys.executable
        standin = await spawn(py, "-m", "tests.slack_standin", "--port", str(slack_port), "--bot-token", BOT_TOKEN)
        env = firebreak_env(
            f"http://127.0.0.1:{slack_port}/api/",
            REDIS_URL=server.url,
            FIREBREAK_HOST="127.0.0.1",
            FIREBREAK_PORT=str(fb_port),
            FIREBREAK_LOG_LEVEL="ERROR",
        )
        bot = await spawn(py, "-m", "bot", "serve", env=env, log=LOG)
        try:
            await wait_ready(f"http://127.0.0.1:{fb_port}/readyz")
            url = f"http://127.0.0.1:{fb_port}/slack/events"
            channel = await declare(url, slack_port, server.url)
            freeze = await phase(url, channel, slack_port, server, "freeze", 2.0, 5.0, 2.0)
            restart = await phase(url, channel, slack_port, server, "restart", 2.0, 0.0, 3.0)
            landed = await notes(server.url)
        finally:
            for p in (bot, standin):
                p.terminate()
            await asyncio.gather(bot.wait(), standin.wait())
            server.stop()
    return report(freeze, restart, landed)


async def declare(url: str, slack_port: int, redis_url: str) -> str:
    await send(url, "declare sev2 Redis fault bench", "CGENERAL", slack_port, "declare")
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:

        async def channel() -> str | None:
            doc = await client.hget("fb:incident:1", "doc")
            return json.loads(doc).get("channel_id") if doc else None

        await eventually(channel, within=20, what="the bench incident never got its channel")
        return str(await channel())
    finally:
        await client.aclose()


async def send(url: str, text: str, channel: str, slack_port: int, trigger: str) -> tuple[float, str]:
    form = {
        "command": "/incident",
        "text": text,
        "user_id": "UBENCH",
        "channel_id": channel,
        "trigger_id": trigger,
        "response_url": f"http://127.0.0.1:{slack_port}/response/faults",
    }
    body = urlencode(form)
    headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        answer = await resp.text()
    return time.perf_counter() - started, (json.loads(answer).get("text", "") if answer else "")


async def phase(
    url: str, channel: str, slack_port: int, server: RedisProcess, name: str, before: float, hold: float, after: float
) -> tuple[list[Ack], float, float]:
    """Load for `before` s, then the fault (a `hold` s freeze, or a restart when hold is 0), then `after` s."""
    acks: list[Ack] = []
    stop = asyncio.Event()
    t0 = time.perf_counter()

    async def sender(n: int) -> None:
        i = 0
        while not stop.is_set():
            note = f"{name} {n}-{i}"
            sent = time.perf_counter() - t0
            seconds, text = await send(url, f"note {note}", channel, slack_port, f"{name}.{n}.{i}")
            acks.append(Ack(sent, seconds, text, note))
            i += 1

    senders = [asyncio.create_task(sender(n)) for n in range(SENDERS)]
    await asyncio.sleep(before)
    fault_at = time.perf_counter() - t0
    if hold:
        server.freeze()
        await asyncio.sleep(hold)
        server.thaw()
    else:
        await asyncio.to_thread(server.restart)
    back_at = time.perf_counter() - t0
    await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*senders)
    return acks, fault_at, back_at


async def notes(redis_url: str) -> list[str]:
    """The notes in the timeline, once every recorded job has run."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        started = time.perf_counter()
        backlog = await due_now(client)

        async def drained() -> bool:
            return await due_now(client) == 0

        await eventually(drained, within=300, what="the recorded jobs never all ran", interval=0.2)
        print(
            f"jobs still queued when the load stopped: {backlog}, all run {time.perf_counter() - started:.1f} s later"
        )
        entries = await client.xrange("fb:incident:1:timeline") or []
    finally:
        await client.aclose()
    events = [json.loads(fields["e"]) for _, fields in entries if fields]
    return [e["payload"]["text"] for e in events if e.get("payload", {}).get("kind") == "note"]


def report(freeze: tuple[list[Ack], float, float], restart: tuple[list[Ack], float, float], landed: list[str]) -> int:
    ok = True
    print(f"{'':34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}  outcome")
    for name, (acks, fault_at, back_at) in (("freeze 5 s", freeze), ("restart", restart)):
        windows = {
            "before": [a for a in acks if a.sent + a.seconds < fault_at],
            "during": [a for a in acks if a.sent < back_at and a.sent + a.seconds >= fault_at],
            "after it answers": [a for a in acks if a.sent >= back_at],
        }
        for window, group in windows.items():
            if not group:
                continue
            ms = [a.seconds for a in group]
            down = sum(a.text == STORE_DOWN for a in group)
            unsure = sum(a.text == STORE_UNSURE for a in group)
            outcome = f"{len(group) - down - unsure} recorded, {down} 'nothing was done', {unsure} 'unsure'"
            row = f"{len(group):6}{pct(ms, 0.5):10.1f}{pct(ms, 0.99):10.1f}{1000 * max(ms):10.1f}"
            print(f"{name + ': ' + window:34}{row}  {outcome}")
        during = windows["during"]
        if name.startswith("freeze") and during and 1000 * max(a.seconds for a in during) > FREEZE_MAX_ACK_MS:
            print(f"target MISSED: an ack during the freeze took over {FREEZE_MAX_ACK_MS:.0f} ms")
            ok = False
        failed_after = [a for a in windows["after it answers"] if a.text in (STORE_DOWN, STORE_UNSURE)]
        if failed_after:
            print(f"target MISSED: {len(failed_after)} commands failed after Redis answered again ({name})")
            ok = False
    recorded = {a.note for acks, _, _ in (freeze, restart) for a in acks if a.text not in (STORE_DOWN, STORE_UNSURE)}
    refused = {a.note for acks, _, _ in (freeze, restart) for a in acks if a.text == STORE_DOWN}
    lost, duplicated = recorded - set(landed), len(landed) - len(set(landed))
    done_anyway = refused & set(landed)
    mean = 1000 * statistics.mean(a.seconds for acks, _, _ in (freeze, restart) for a in acks)
    print(
        f"acknowledged {len(recorded)}, landed {len(set(landed))}, lost {len(lost)}, duplicated {duplicated}, "
        f"done although refused {len(done_anyway)}; mean ack {mean:.1f} ms"
    )
    if lost or duplicated or done_anyway:
        print("target MISSED: what was acknowledged must land exactly once, and nothing refused may land")
        ok = False
    print(f"targets: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(asyncio.run(main()))
