"""Signed slash commands sent to firebreak at a steady rate from a process of its own, each ack timed.

`python -m bench._acks --url U --channel C --text status --rate 20 --response-url R` sends one command every
1/rate s (open loop: a slow ack does not hold back the next one, as Slack's users would not wait) until its stdin
closes, then prints one JSON line: [[sent, seconds, status], ...], `sent` on time.monotonic() (the machine's clock,
which the bench shares) so it can be placed in the bench's windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlencode

import aiohttp

from tests.harness import sign, slash_command

Ack = tuple[float, float, int]


async def stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


async def send(args: argparse.Namespace) -> list[Ack]:
    acks: list[Ack] = []
    closed = asyncio.create_task(stdin_closed())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            form = slash_command(
                args.text,
                user=f"ULOAD{i % 7}",
                channel=args.channel,
                command="/incident",
                response_url=args.response_url,
                trigger_id=f"load.{i}.{time.time_ns()}",
            )
            body = urlencode(form)
            headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
            sent, started = time.monotonic(), time.perf_counter()
            async with session.post(args.url, data=body, headers=headers) as resp:
                await resp.read()
            acks.append((sent, time.perf_counter() - started, resp.status))

        tasks: list[asyncio.Task[None]] = []
        interval, due, i = 1 / args.rate, time.monotonic(), 0
        while not closed.done():
            tasks.append(asyncio.create_task(one(i)))
            i += 1
            due += interval
            await asyncio.wait([closed], timeout=max(0.0, due - time.monotonic()))
        await asyncio.gather(*tasks)
    return sorted(acks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--text", default="status")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--response-url", required=True)
    print(json.dumps(asyncio.run(send(parser.parse_args()))), flush=True)
