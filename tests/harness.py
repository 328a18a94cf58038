"""Drives a real firebreak app the way Slack does: signed HTTP requests in, Web API calls out to the stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.root.app import Firebreak, build
from bot.root.runtime import web_app
from bot.root.settings import Settings
from tests.slack_standin import SlackStandIn

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 request signature: HMAC-SHA256 over 'v0:<timestamp>:<body>'."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(
    text: str, *, user: str, channel: str, command: str, response_url: str, trigger_id: str
) -> dict[str, str]:
    """The form fields Slack sends for a slash command (over HTTP, or as a Socket Mode envelope's payload)."""
    return {
        "token": "deprecated",
        "team_id": "T00000001",
        "team_domain": "firebreak-test",
        "channel_id": channel,
        "channel_name": "whatever",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A00000001",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def firebreak_env(slack_api_url: str, **extra: str) -> dict[str, str]:
    """Environment for a `firebreak` subprocess: this process's, minus any firebreak settings it happens to carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FIREBREAK_", "REDIS_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_api_url)
    env.update(FIREBREAK_POST_SPACING="0")  # as in-process tests; tests/test_pacing.py covers the pacing
    env.update(extra)
    return env


async def eventually(check: Callable[[], object], *, within: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` (sync or async) until it returns something truthy; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} (waited {within:g} s)")
        await asyncio.sleep(interval)


async def wait_ready(url: str, *, within: float = 30) -> None:
    """Wait until `url` answers 200: a server started in another process is up."""
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            try:
                async with session.get(url) as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(ready, within=within, what=f"{url} never became ready", interval=0.1)


class FakeClock:
    """Starts at real now (so it sorts with Slack's message timestamps) and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Harness:
    fb: Firebreak
    slack: SlackStandIn
    clock: FakeClock
    url: str = ""
    session: aiohttp.ClientSession | None = None
    _runner: web.AppRunner | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        self._runner = web.AppRunner(web_app(self.fb), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.fb.close()

    async def post_raw(self, body: str, headers: dict[str, str], content_type: str) -> tuple[int, str]:
        assert self.session is not None
        headers = {"Content-Type": content_type, **headers}
        async with self.session.post(f"{self.url}/slack/events", data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def command(
        self,
        text: str,
        *,
        user: str = "UALICE",
        channel: str = "CGENERAL",
        trigger: str | None = None,
        retry: int | None = None,
    ) -> dict[str, Any]:
        """Send a signed slash command; returns the ack body as JSON ({} for an empty ack)."""
        n = next(self._seq)
        form = slash_command(
            text,
            user=user,
            channel=channel,
            command=self.fb.config.command,
            response_url=self.slack.response_url(f"cmd{n}"),
            trigger_id=trigger or f"trig.{n}.{time.time_ns()}",
        )
        body = urlencode(form)
        headers = sign(body) | (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        )
        status, text_ = await self.post_raw(body, headers, "application/x-www-form-urlencoded")
        assert status == 200, (status, text_)
        return json.loads(text_) if text_ else {}

    async def interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post_raw(body, sign(body), "application/x-www-form-urlencoded")

    async def interaction(self, kind: str, *, user: str, **fields: Any) -> tuple[int, str]:
        """A signed interactivity payload (`block_actions`, `view_submission`) from `user`; returns (status, body)."""
        envelope = {"type": kind, "team": {"id": "T00000001"}, "user": {"id": user}, "api_app_id": "A00000001"}
        return await self.interactive(envelope | fields)

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> int:
        envelope = {
            "token": "deprecated",
            "team_id": "T00000001",
            "api_app_id": "A00000001",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._seq):010d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": "T00000001", "user_id": "UFIREBREAK", "is_bot": True}],
        }
        body = json.dumps(envelope)
        headers = sign(body) | (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        )
        status, _ = await self.post_raw(body, headers, "application/json")
        return status

    async def settle(self) -> None:
        """Wait for all post-ack work, as Slack users would wait for the bot's replies."""
        await self.fb.worker.drain(timeout=20)

    async def advance(self, **kw: float) -> None:
        """Move the incident clock on, let every replica's worker see what came due, and wait for it."""
        self.clock.advance(**kw)
        self.fb.worker.wake()
        await self.settle()

    async def run(self, text: str, **kw: Any) -> dict[str, Any]:
        ack = await self.command(text, **kw)
        await self.settle()
        return ack

    def replies(self) -> list[str]:
        """Text of every ephemeral reply sent through response_url, oldest first."""
        return [r.get("text", "") for r in self.slack.responses]

    def last_reply(self) -> str:
        assert self.slack.responses, "the bot sent no reply"
        return str(self.slack.responses[-1].get("text", ""))

    async def get(self, path: str) -> tuple[int, str]:
        assert self.session is not None
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()


@asynccontextmanager
async def running(settings: Settings, slack: SlackStandIn, clock: FakeClock | None = None) -> AsyncIterator[Harness]:
    """A firebreak app built from `settings`, serving HTTP on a free port, on a clock the test moves."""
    clock = clock or FakeClock()
    h = Harness(await build(settings, clock=clock), slack, clock)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
