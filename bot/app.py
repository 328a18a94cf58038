"""Composition root: builds every adapter from Settings, wires them into the service and the aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.embedded_redis import EmbeddedRedis
from bot.adapters.redis_store import RedisIncidentStore
from bot.adapters.slack_chat import SlackChat, make_client
from bot.config import IncidentConfig, load_config
from bot.jobs import Jobs
from bot.metrics import Metrics
from bot.ports import Clock
from bot.service import IncidentService, utcnow
from bot.settings import Settings
from handlers.registry import Registry
from handlers.slack import build_bolt_app
from handlers.web import routes

log = logging.getLogger(__name__)
REDIS_MAX_CONNECTIONS = 1000


@dataclass
class Firebreak:
    """One running bot: what serve, check and the tests all build the same way."""

    settings: Settings
    config: IncidentConfig
    metrics: Metrics
    redis: aioredis.Redis
    store: RedisIncidentStore
    client: AsyncWebClient
    session: aiohttp.ClientSession
    """Shared by every call to Slack (Web API and response_url), so connections are reused."""
    service: IncidentService
    jobs: Jobs
    bolt: AsyncApp
    embedded: EmbeddedRedis | None = None

    async def close(self) -> None:
        await self.jobs.drain()
        await self.session.close()
        await self.redis.aclose()
        if self.embedded is not None:
            await self.embedded.stop()


async def connect_redis(settings: Settings) -> tuple[aioredis.Redis, EmbeddedRedis | None]:
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = await embedded.start()
    # Not BlockingConnectionPool: it serialises every checkout and release through one asyncio.Condition,
    # which made acks queue behind each other under a burst (bench/ack_latency.py). The plain pool takes no
    # lock; its cap only needs to exceed concurrent requests plus the bounded post-ack jobs.
    pool = aioredis.ConnectionPool.from_url(
        url, max_connections=REDIS_MAX_CONNECTIONS, decode_responses=True, health_check_interval=30
    )
    return aioredis.Redis.from_pool(pool), embedded


async def build(settings: Settings, *, clock: Clock = utcnow, registry: Registry | None = None) -> Firebreak:
    config = load_config(settings.config_file)
    metrics = Metrics()
    redis_client, embedded = await connect_redis(settings)
    store = RedisIncidentStore(redis_client)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, session=session)
    chat = SlackChat(client, metrics)
    service = IncidentService(
        store, chat, config, announce_channel=settings.announce_channel, clock=clock, metrics=metrics
    )
    jobs = Jobs(metrics)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt = build_bolt_app(
        service=service, client=client, jobs=jobs, metrics=metrics, signing_secret=secret, registry=registry
    )
    return Firebreak(settings, config, metrics, redis_client, store, client, session, service, jobs, bolt, embedded)


async def reminder_loop(fb: Firebreak, stop: asyncio.Event) -> None:
    """Nudge ICs whose status update is overdue; the store's lease makes this safe with several replicas.

    Stopped by `stop`, not by cancellation: a cancel landing inside a Redis call can surface as an ordinary
    error (and be retried forever) or leave the connection mid-reply, so a sweep always runs to its end.
    """
    while not stop.is_set():
        try:
            fb.metrics.reminders.inc(await fb.service.remind_due())
        except Exception:
            log.exception("reminder sweep failed; retrying next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=fb.settings.reminder_interval_seconds)


def web_app(fb: Firebreak) -> web.Application:
    app = web.Application()
    app.add_routes(routes(fb.bolt, fb.store, fb.metrics))

    async def background(_: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(reminder_loop(fb, stop), name="firebreak:reminders")
        yield
        stop.set()
        await task
        await fb.jobs.drain()

    app.cleanup_ctx.append(background)
    return app


async def connect_socket_mode(fb: Firebreak) -> AsyncSocketModeHandler | None:
    """With SLACK_APP_TOKEN, Slack delivers the same requests over a websocket; acks go back on it."""
    if fb.settings.slack_app_token is None:
        return None
    handler = AsyncSocketModeHandler(fb.bolt, fb.settings.slack_app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
    log.info("firebreak connected to Slack over Socket Mode")
    return handler


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: HTTP always (probes, metrics), plus Socket Mode when an app token is set."""
    fb = await build(settings)
    runner = web.AppRunner(web_app(fb), access_log=None)
    await runner.setup()
    # A deep accept queue: a burst of new connections (an outage makes everyone type at once) must queue,
    # not overflow into 1 s SYN retransmits.
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()
    log.info("firebreak listening on http://%s:%s (Slack at /slack/events)", settings.host, settings.port)
    socket_handler = await connect_socket_mode(fb)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("firebreak shutting down")
        if socket_handler is not None:
            await socket_handler.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()
        await fb.close()
