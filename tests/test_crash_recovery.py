"""kill -9 at any moment of a declare loses nothing and repeats nothing.

A real `firebreak serve` process works against the Slack stand-in; the stand-in catches one Slack call of
the declare (before Slack acts on it, or after it acted but before firebreak hears the answer), the test
SIGKILLs firebreak right then, starts a new process, and checks that the declare was finished exactly once:
one channel, one summary, one announcement, the topic set, no orphan channel, and the user answered.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import free_port
from tests.harness import eventually, firebreak_env, sign, slash_command, wait_ready
from tests.slack_standin import SlackStandIn

TITLE = "Checkout API 5xx above SLO"
SLUG = "checkout-api-5xx-above-slo"


@asynccontextmanager
async def serve(slack: SlackStandIn, redis_url: str, tmp_path: Path, port: int, **extra: str) -> AsyncIterator[Any]:
    env = firebreak_env(
        f"{slack.url}/api/",
        REDIS_URL=redis_url,
        FIREBREAK_ANNOUNCE_CHANNEL=slack.by_name("incidents").id,
        FIREBREAK_HOST="127.0.0.1",
        FIREBREAK_PORT=str(port),
        FIREBREAK_JOB_LEASE="1",
        FIREBREAK_DATA_DIR=str(tmp_path / "data"),
        **extra,
    )
    log = (tmp_path / f"serve-{port}-{datetime.now(UTC):%H%M%S%f}.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", within=15)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
        log.close()


async def declare(port: int, slack: SlackStandIn) -> None:
    await command(port, slack, f"declare sev2 {TITLE}", "CGENERAL", "trig-crash-1", "Declaring SEV2")


async def command(
    port: int, slack: SlackStandIn, text: str, channel: str, trigger: str, ack: str = "", user: str = "UALICE"
) -> None:
    form = slash_command(
        text,
        user=user,
        channel=channel,
        command="/incident",
        response_url=slack.response_url("crash"),
        trigger_id=trigger,
    )
    body = urlencode(form)
    headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    url = f"http://127.0.0.1:{port}/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200
        assert ack in await resp.text()


def summary_of(message: dict[str, Any]) -> bool:
    return bool((message.get("metadata") or {}).get("event_payload", {}).get("key") == "INC-1:summary")


POINTS = [
    pytest.param("conversations.create", False, None, id="before-channel-created"),
    pytest.param("conversations.create", True, None, id="channel-created-answer-lost"),
    pytest.param("conversations.setTopic", True, None, id="topic-set-answer-lost"),
    pytest.param("chat.postMessage", True, "summary", id="summary-posted-answer-lost"),
    pytest.param("chat.postMessage", True, "announcement", id="announcement-posted-answer-lost"),
]


@pytest.mark.parametrize(("method", "after", "which"), POINTS)
async def test_kill_during_declare_then_restart_finishes_it_once(
    slack: SlackStandIn, redis_url: str, tmp_path: Path, method: str, after: bool, which: str | None
) -> None:
    announce = slack.by_name("incidents")

    def when(args: dict[str, Any]) -> bool:
        if which == "announcement":
            return args.get("channel") == announce.id
        if which == "summary":
            return args.get("channel") != announce.id
        return True

    hold = slack.hold(method, after=after, when=when)
    port = free_port()
    async with serve(slack, redis_url, tmp_path, port) as first:
        await declare(port, slack)
        await eventually(lambda: slack.held, within=15, what=f"the declare never reached {method}")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    hold.release.set()  # Slack answers into a closed connection

    async with serve(slack, redis_url, tmp_path, free_port()):
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:

            async def finished() -> bool:
                done = await only_scheduled(client)
                return done and any("Declared *INC-1*" in r.get("text", "") for r in slack.responses)

            await eventually(finished, within=20, what="the restarted bot never finished the declare")
        finally:
            await client.aclose()

    ours = [c for c in slack.channels.values() if SLUG in c.name]
    assert [c.name for c in ours] == [f"inc-{datetime.now(UTC):%Y%m%d}-{SLUG}"], "one channel, no orphan"
    channel = ours[0]
    assert re.match(r"SEV2 \| investigating \| IC <@UALICE> \| next update \d\d:\d\d UTC \| INC-1 ", channel.topic)
    assert "UALICE" in channel.members
    assert len([m for m in channel.messages if summary_of(m)]) == 1, "one summary"
    roots = [m for m in announce.messages if "thread_ts" not in m]
    assert len(roots) == 1 and "INC-1" in str(roots[0]["blocks"]), "one announcement"
    declared = [r for r in slack.responses if "Declared *INC-1*" in r.get("text", "")]
    assert len(declared) == 1, [r.get("text") for r in slack.responses]


SCHEDULED = ("reminder:", "mitigation-expire:")
"""Jobs due later (an incident's next reminder, a request's expiry): not work left over from a request."""


async def only_scheduled(client: aioredis.Redis) -> bool:
    return all(str(j).startswith(SCHEDULED) for j in await client.zrange("fb:jobs:due", 0, -1))


async def queue_empty(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:

        async def empty() -> bool:
            return await only_scheduled(client)

        await eventually(empty, within=20, what="jobs never finished")
    finally:
        await client.aclose()


async def test_kill_during_a_severity_change_then_restart_shows_it_once(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    """The change is saved and its notice posted, then the process dies before the thread reply and the topic:
    the resumed job must show the rest, once, though the record it reads already has the new severity."""
    port = free_port()
    async with serve(slack, redis_url, tmp_path, port) as first:
        await declare(port, slack)
        await queue_empty(redis_url)
        channel = next(c for c in slack.channels.values() if SLUG in c.name)
        # The notice is posted (Slack has it) but the answer is lost: the topic was never attempted.
        hold = slack.hold("chat.postMessage", after=True, when=lambda args: args.get("channel") == channel.id)
        await command(port, slack, "sev 1", channel.id, "trig-crash-sev")
        await eventually(lambda: slack.held, within=15, what="the change never reached Slack")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    hold.release.set()
    async with serve(slack, redis_url, tmp_path, free_port()):
        await queue_empty(redis_url)
        await eventually(
            lambda: channel.topic.startswith("SEV1 "), within=10, what=f"the topic still says {channel.topic!r}"
        )
    notices = [m for m in channel.messages if "severity raised to *SEV1*" in m.get("text", "")]
    assert len(notices) == 1
    announce = slack.by_name("incidents")
    thread = [m for m in announce.messages if "thread_ts" in m and "severity raised" in m.get("text", "")]
    assert len(thread) == 1
    assert sum("INC-1 is now SEV1" in r.get("text", "") for r in slack.responses) == 1


async def test_a_replica_frozen_past_its_lease_stops_and_leaves_the_job_to_the_one_that_took_it(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    """A replica frozen (a VM pause, a GC stall) longer than its lease must not carry on when it wakes: the
    replica that took the job over finishes it, and the declare is still done once, with one reply."""
    announce = slack.by_name("incidents")
    hold = slack.hold("chat.postMessage", after=True, when=lambda args: args.get("channel") != announce.id)
    port_a, port_b = free_port(), free_port()
    async with serve(slack, redis_url, tmp_path, port_a) as a:
        await declare(port_a, slack)
        await eventually(lambda: slack.held, within=15, what="the declare never reached its summary")
        async with serve(slack, redis_url, tmp_path, port_b):
            a.send_signal(signal.SIGSTOP)
            try:
                await queue_empty(redis_url)  # B took the job over once A's lease ran out, and finished it
            finally:
                hold.release.set()  # A's summary call answers
                a.send_signal(signal.SIGCONT)
            await asyncio.sleep(2)  # A wakes, hears the answer, and must stop rather than go on
    ours = [c for c in slack.channels.values() if SLUG in c.name]
    assert len(ours) == 1
    assert len([m for m in ours[0].messages if summary_of(m)]) == 1, "one summary"
    assert len([m for m in announce.messages if "thread_ts" not in m]) == 1, "one announcement"
    declared = [r for r in slack.responses if "Declared *INC-1*" in r.get("text", "")]
    assert len(declared) == 1, [r.get("text") for r in slack.responses]
    assert "another worker" in _logs(tmp_path) or "lease ran out" in _logs(tmp_path)


def _logs(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
