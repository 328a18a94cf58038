"""bench/playbooks.py's runs through firebreak: requested and approved as people do, while acks and the loop are timed.

firebreak runs in this process (tests/harness.py's `running`, the real app on a real port) with the Slack stand-in,
so a task in its event loop can record how late a 10 ms sleep wakes; redis-server, the Kubernetes stand-in
(bench/_cluster.py) and the sender of other slash commands (bench/_acks.py) each run in a process of their own.
Progress is read from the Slack stand-in's messages (in memory), not from Redis, so watching costs the loop nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _cluster as cluster
from bench.ack_latency import spawn
from bot.models import Incident, MitigationState
from bot.root.runtime import settle_heap
from tests.conftest import make_settings, redis_command
from tests.harness import BOT_TOKEN, Harness, eventually, running
from tests.mitigation_driver import buttons, declare, text_of
from tests.slack_standin import SlackStandIn

APPROVE = "fb_mit_approve"
ACK_RATE = 50.0
"""Other slash commands a second while the playbooks plan and run: enough acks in a one-second run for a p99."""
IDLE_S = 2.0
"""The window before the first request, for comparison."""
TICK_S = 0.01
RUN_WITHIN_S = 300.0


@dataclass
class Window:
    """A span of time.monotonic(), with the acks sent and the loop's lateness recorded in it."""

    label: str
    start: float = 0.0
    end: float = 0.0
    acks: list[float] = field(default_factory=list)
    failed: int = 0
    """Acks that were not 200."""
    lateness: list[float] = field(default_factory=list)
    gc_pauses: list[float] = field(default_factory=list)
    """Full (generation 2) garbage collections in the window, in seconds: the loop stops for each."""

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def take(self, acks: list[tuple[float, float, int]], loop: Lateness) -> None:
        inside = [a for a in acks if self.start <= a[0] < self.end]
        self.acks = [seconds for _, seconds, _ in inside]
        self.failed = sum(1 for _, _, status in inside if status != 200)
        self.lateness = [s for at, s in loop.samples if self.start <= at < self.end]
        self.gc_pauses = [s for at, s in loop.full_collections if self.start <= at < self.end]


@dataclass
class BotRun:
    label: str
    plan: Window
    """From the slash command until the plan offers Approve (the LISTs and the dry run, posted)."""
    run: Window
    """From the Approve click until the result is posted (a fresh plan, then each write a recorded step)."""
    calls: cluster.Calls = field(default_factory=Counter)
    outcome: str = ""
    done: bool = False


class Lateness:
    """How late a 10 ms sleep wakes in the loop firebreak runs in (the longest any ready callback waited), and the
    process's full garbage collections, which stop the loop for as long as they take."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.full_collections: list[tuple[float, float]] = []
        self._collecting = 0.0

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._collecting = time.perf_counter()
        else:
            self.full_collections.append((time.monotonic(), time.perf_counter() - self._collecting))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        gc.callbacks.append(self._gc)
        try:
            while True:
                before = loop.time()
                await asyncio.sleep(TICK_S)
                self.samples.append((time.monotonic(), max(0.0, loop.time() - before - TICK_S)))
        finally:
            gc.callbacks.remove(self._gc)


def keyed(slack: SlackStandIn, incident: Incident, suffix: str) -> dict[str, Any] | None:
    """The message firebreak posted with a key ending in `suffix` (`:mitigation2`, `:result2`), if it has yet."""
    messages = slack.channels[incident.channel_id or ""].messages
    found = [
        m for m in messages if str((m.get("metadata") or {}).get("event_payload", {}).get("key", "")).endswith(suffix)
    ]
    return found[0] if found else None


async def request(bot: Harness, incident: Incident, n: int, run: BotRun, text: str, served: cluster.Served) -> None:
    """`/incident mitigate <text>` until its plan shows Approve, then Approve (by someone else) until its result."""
    await served.calls(reset=True)
    started = time.monotonic()
    await bot.command(f"mitigate {text}", user="UALICE", channel=incident.channel_id or "")

    await eventually(
        lambda: keyed(bot.slack, incident, f":mitigation{n}"),
        within=RUN_WITHIN_S,
        what=f"M{n} was never posted",
        interval=0.005,
    )
    planned = time.monotonic()
    plan = keyed(bot.slack, incident, f":mitigation{n}")
    if plan is None or APPROVE not in buttons(plan):  # refused (limits), or the dry run failed
        raise RuntimeError(f"M{n} cannot be approved: {text_of(plan or {})}")
    action = {"type": "button", "action_id": APPROVE, "block_id": "b", "value": f"{incident.id}:{n}"}
    status, _ = await bot.interaction(
        "block_actions",
        user="UBOB",
        response_url=bot.slack.response_url(f"approve{n}"),
        channel={"id": incident.channel_id},
        container={"type": "message", "message_ts": plan["ts"], "channel_id": incident.channel_id},
        message={"ts": plan["ts"]},
        trigger_id=f"bench-approve-{n}",
        actions=[action | {"action_ts": f"{n}.5"}],
    )
    assert status == 200
    plan_calls = await served.calls(reset=True)
    clicked = time.monotonic()
    await eventually(
        lambda: keyed(bot.slack, incident, f":result{n}"),
        within=RUN_WITHIN_S,
        what=f"M{n} never reported",
        interval=0.005,
    )
    finished = time.monotonic()
    m = await bot.fb.service.mitigation.get(incident.id, n)
    counts = Counter(r.outcome.value for r in m.results)
    run.plan.start, run.plan.end, run.run.start, run.run.end = started, planned, clicked, finished
    run.calls = plan_calls + await served.calls()
    run.outcome = f"M{n} {m.state.value}: " + ", ".join(f"{c} {o}" for o, c in counts.items())
    run.outcome += f" ({m.reason})" if m.reason else ""
    run.done = m.state is MitigationState.DONE and set(counts) == {"done"} and len(m.results) == len(m.plan.changes)


async def through_the_bot(
    asks: list[tuple[str, str]], shape: cluster.Shape, config: str, tmp: Path
) -> tuple[list[BotRun], Window]:
    """Each ask (label, `cordon pool=big`) requested and approved in turn in one incident, under a steady load of
    `/incident status` commands; the runs and the idle window before them."""
    sock = tmp / "redis.sock"
    redis = await spawn(*redis_command(sock))
    served = await cluster.start(shape)
    slack = SlackStandIn(bot_token=BOT_TOKEN)
    slack.add_channel("incidents")
    await slack.start()
    load: asyncio.subprocess.Process | None = None
    lateness = Lateness()
    watching = asyncio.create_task(lateness.run(), name="bench:lateness")
    try:
        await eventually(sock.exists, within=10, what="redis-server never opened its socket")
        (tmp / "firebreak.yaml").write_text(config)
        settings = make_settings(
            slack,
            f"unix://{sock}",
            kubeconfig=served.write_kubeconfig(tmp / "bot.kubeconfig", context="prod"),
            kube_context="prod",
            config_file=tmp / "firebreak.yaml",
            log_level="WARNING",
        )
        async with running(settings, slack) as bot:
            settle_heap()  # as `firebreak serve` does after building the bot
            incident = await declare(bot, "Bench: node playbooks at scale")
            flags = [
                "--url",
                f"{bot.url}/slack/events",
                "--channel",
                incident.channel_id or "",
                "--rate",
                str(ACK_RATE),
            ]
            flags += ["--response-url", slack.response_url("load")]
            load = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench._acks",
                *flags,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(1.0 + IDLE_S)  # the sender starts, then the idle window
            idle = Window("idle (no playbook)", time.monotonic() - IDLE_S, time.monotonic())
            runs = [BotRun(label, Window(f"{label}: plan"), Window(f"{label}: run")) for label, _ in asks]
            for n, (run, (_, text)) in enumerate(zip(runs, asks, strict=True), 1):
                await request(bot, incident, n, run, text, served)
            assert load.stdin is not None and load.stdout is not None
            load.stdin.close()
            acks = [(float(a), float(b), int(c)) for a, b, c in json.loads(await load.stdout.readline())]
            await load.wait()
            await bot.settle()
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        if load is not None and load.returncode is None:
            load.kill()
            await load.wait()
        await slack.stop()
        await served.stop()
        redis.terminate()
        await redis.wait()
    for window in [idle, *(w for r in runs for w in (r.plan, r.run))]:
        window.take(acks, lateness)
    return runs, idle
