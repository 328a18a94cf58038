"""bench/alert_storm.py's Alertmanager: the storm's webhooks POSTed on schedule from a process of its own.

`python -m bench._alert_sender --url U --token T --storm JSON` builds bench/_storm_plan.py's plan (bodies encoded
before the start, so the schedule is kept), then runs every group's flushes concurrently: within a group one at a
time, as Alertmanager's aggregation group waits for its notification before the next; a non-200 is retried with backoff
as Alertmanager retries, and every `retry_every`-th POST is sent a second time as a retry after a lost answer.
It prints one JSON line: the start on time.monotonic() (the machine's clock, which the bench shares), each POST
as [group, sent, seconds, status, alerts, retry], and the occurrences each group had acknowledged with a 200.
Encoding and sending run here, not in the bot's event loop, so they are not counted in its latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from bench._storm_plan import Send, Storm, plan

RETRY_BACKOFF_S = 0.2
MAX_ATTEMPTS = 6

Post = tuple[int, float, float, int, int, bool]


async def send(url: str, token: str, storm: Storm) -> dict[str, Any]:
    sends = plan(storm)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    posts: list[Post] = []
    acked: dict[int, set[tuple[str, str]]] = {g: set() for g in range(storm.groups)}
    counter = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def post(s: Send, retry: bool) -> int:
            sent, started = time.monotonic(), time.perf_counter()
            try:
                async with session.post(url, data=s.body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError:
                status = 0
            posts.append((s.group, sent, time.perf_counter() - started, status, len(s.occurrences), retry))
            return status

        async def group(flushes: list[Send], t0: float) -> None:
            nonlocal counter
            for s in flushes:
                await asyncio.sleep(max(0.0, t0 + s.at - time.monotonic()))
                counter += 1
                again = counter % storm.retry_every == 0
                for attempt in range(MAX_ATTEMPTS):
                    if await post(s, retry=attempt > 0) == 200:
                        acked[s.group].update(s.occurrences)
                        break
                    await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
                if again and await post(s, retry=True) == 200:
                    acked[s.group].update(s.occurrences)

        t0 = time.monotonic()
        await asyncio.gather(*(group(flushes, t0) for flushes in sends))
    return {
        "t0": t0,
        "posts": sorted(posts, key=lambda p: p[1]),
        "acked": {str(g): sorted(occ) for g, occ in acked.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--storm", required=True, help="bench/_storm_plan.py's Storm, as JSON")
    a = parser.parse_args()
    print(json.dumps(asyncio.run(send(a.url, a.token, Storm(**json.loads(a.storm))))), flush=True)
