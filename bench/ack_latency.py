"""Slash-command ack latency of firebreak against a bare aiohttp handler, at 1 and 200 concurrent requests.

Each server runs in its own process (firebreak via `firebreak serve`, with a real redis-server and the Slack
stand-in); this process only sends signed `/incident declare` commands and times the HTTP answers.
Target: p99 ack at 200 concurrent <= 1 s, a third of Slack's 3 s limit; exits 1 when missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from tests.conftest import free_port, redis_command
from tests.harness import BOT_TOKEN, eventually, firebreak_env, sign, wait_ready

P99_TARGET_MS = 1000.0
LOG = Path(tempfile.gettempdir()) / "firebreak-bench.log"


async def serve_bare(port: int) -> None:
    """The floor: an aiohttp handler that reads the body and answers 200, as an ack does."""

    async def ack(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")

    app = web.Application()
    app.router.add_route("*", "/slack/events", ack)
    app.router.add_get("/healthz", ack)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def due_now(client: aioredis.Redis) -> int:
    """Jobs due within a minute: the work of requests. An incident's next reminder (minutes away) is not."""
    return int(await client.zcount("fb:jobs:due", "-inf", time.time() + 60))


async def drained(port: int, redis_url: str, within: float = 300) -> None:
    """Wait until firebreak has run every job of the last round (none queued, none running), so rounds don't
    overlap. The bare server has no metrics and no background work."""
    client = aioredis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as session:

            async def idle() -> bool:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text() if resp.status == 200 else ""
                if resp.status != 200:
                    return True
                return "\nfirebreak_background_tasks 0.0" in text and await due_now(client) == 0

            await eventually(idle, within=within, what="firebreak's post-ack work did not drain", interval=0.2)
    finally:
        await client.aclose()


def command_body(i: int, nonce: str, response_url: str, text: str) -> str:
    return urlencode(
        {
            "command": "/incident",
            "text": text.format(sev=i % 4 + 1, nonce=nonce, i=i),
            "user_id": f"U{i % 50:05d}",
            "channel_id": "CBENCH",
            "team_id": "T00000001",
            "trigger_id": f"bench.{nonce}.{i}",
            "response_url": response_url,
        }
    )


async def load(url: str, n: int, concurrency: int, nonce: str, response_url: str, text: str) -> list[float]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            body = command_body(i, nonce, response_url, text)
            headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
            async with sem:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered {resp.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(i) for i in range(n)))
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def spawn(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> asyncio.subprocess.Process:
    out = log.open("wb") if log else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(*args, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT)


async def main(requests_c1: int, requests_c200: int) -> int:
    procs: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "redis.sock"
        procs.append(await spawn(*redis_command(sock)))
        slack_port, fb_port, bare_port = free_port(), free_port(), free_port()
        py = sys.executable
        procs.append(await spawn(py, "-m", "tests.slack_standin", "--port", str(slack_port), "--bot-token", BOT_TOKEN))
        procs.append(await spawn(py, "-m", "bench.ack_latency", "--serve-bare", str(bare_port)))
        await eventually(sock.exists, within=5, what="redis-server never opened its socket")
        env = firebreak_env(
            f"http://127.0.0.1:{slack_port}/api/",
            REDIS_URL=f"unix://{sock}",
            FIREBREAK_HOST="127.0.0.1",
            FIREBREAK_PORT=str(fb_port),
            FIREBREAK_ANNOUNCE_CHANNEL="#incidents",
            FIREBREAK_LOG_LEVEL="WARNING",
        )
        procs.append(await spawn(py, "-m", "bot", "serve", env=env, log=LOG))
        try:
            await wait_ready(f"http://127.0.0.1:{fb_port}/readyz")
            await wait_ready(f"http://127.0.0.1:{bare_port}/healthz")
            response_url = f"http://127.0.0.1:{slack_port}/response/bench"
            declare = "declare sev{sev} Bench {nonce} {i}"
            scenarios = [
                ("bare aiohttp", bare_port, declare),
                ("firebreak declare", fb_port, declare),
                ("firebreak help", fb_port, "help"),
            ]
            results: dict[tuple[str, int], list[float]] = {}
            for name, port, text in scenarios:
                url = f"http://127.0.0.1:{port}/slack/events"
                await load(url, 50, 10, f"warm{name}", response_url, text)
                for concurrency, n in ((1, requests_c1), (200, requests_c200)):
                    nonce = f"{name[-4:]}{concurrency}"
                    results[(name, concurrency)] = await load(url, n, concurrency, nonce, response_url, text)
                    await drained(port, f"unix://{sock}")
        finally:
            for p in procs:
                p.terminate()
            await asyncio.gather(*(p.wait() for p in procs))
    print(f"{'':24}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean ms':>10}{'n':>7}")
    for (name, c), lat in results.items():
        mean, worst = 1000 * statistics.mean(lat), 1000 * max(lat)
        row = f"{pct(lat, 0.5):10.2f}{pct(lat, 0.9):10.2f}{pct(lat, 0.99):10.2f}{worst:10.2f}{mean:10.2f}"
        print(f"{name + f' c={c}':24}{row}{len(lat):7}")
    for c in (1, 200):
        bare = results[("bare aiohttp", c)]
        for name in ("firebreak declare", "firebreak help"):
            fb = results[(name, c)]
            p50, p99 = pct(fb, 0.5) / pct(bare, 0.5), pct(fb, 0.99) / pct(bare, 0.99)
            print(f"ratio {name}/bare c={c}: p50 {p50:.1f}x, p99 {p99:.1f}x")
    p99 = max(pct(results[(name, 200)], 0.99) for name in ("firebreak declare", "firebreak help"))
    ok = p99 <= P99_TARGET_MS
    print(
        f"target: firebreak p99 at 200 concurrent <= {P99_TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'} ({p99:.1f} ms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests-c1", type=int, default=300)
    parser.add_argument("--requests-c200", type=int, default=2000)
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(serve_bare(args.serve_bare))
    else:
        sys.exit(asyncio.run(main(args.requests_c1, args.requests_c200)))
