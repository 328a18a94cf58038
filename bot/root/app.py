"""Building one bot from Settings: every adapter, the core service, and the bolt app with its handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import redis.asyncio as aioredis
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.embedded_redis import EmbeddedRedis
from bot.adapters.redis_claims import RedisClaims
from bot.adapters.redis_store import RedisIncidentStore
from bot.adapters.slack_chat import SlackChat, make_client
from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ChatError, ConfigError
from bot.core.jobs import Jobs
from bot.core.metrics import Metrics
from bot.core.ports import Clock
from bot.core.service import IncidentService
from bot.root.settings import Settings
from handlers.registry import Registry
from handlers.signing import SlackSignature
from handlers.slack import build_bolt_app

log = logging.getLogger(__name__)
REDIS_MAX_CONNECTIONS = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    signature: SlackSignature | None
    """Checks Slack's HTTP requests; None in Socket Mode, where the HTTP endpoint is off."""
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


async def announce_channel_id(settings: Settings, chat: SlackChat) -> str | None:
    """FIREBREAK_ANNOUNCE_CHANNEL as an id: Slack's chat.update and conversations.info take ids only.

    A name Slack doesn't know stops the start (like a bad config file). Any other failure (Slack unreachable,
    rate-limited) doesn't: the name is kept and resolved on the first announcement, so a Slack blip at
    start never keeps the bot down.
    """
    ref = settings.announce_channel
    if ref is None:
        return None
    try:
        resolved = await chat.resolve_channel(ref)
    except ChatError as exc:
        if exc.code == "channel_not_found":
            raise ConfigError(f"FIREBREAK_ANNOUNCE_CHANNEL={ref}: {exc}") from None
        log.warning("could not look up the announcement channel %s yet (%s); will retry when announcing", ref, exc)
        return ref
    if resolved != ref:
        log.info("announcement channel %s is %s", ref, resolved)
    return resolved


async def build(settings: Settings, *, clock: Clock = utcnow, registry: Registry | None = None) -> Firebreak:
    config = load_config(settings.config_file)
    metrics = Metrics()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, session=session)
    chat = SlackChat(client, config, metrics)
    try:
        announce = await announce_channel_id(settings, chat)
        redis_client, embedded = await connect_redis(settings)
    except BaseException:
        await session.close()
        raise
    store = RedisIncidentStore(redis_client)
    service = IncidentService(store, chat, config, announce_channel=announce, clock=clock, metrics=metrics)
    jobs = Jobs(metrics)
    bolt = build_bolt_app(
        service=service, claims=RedisClaims(redis_client), client=client, jobs=jobs, metrics=metrics, registry=registry
    )
    secret = settings.slack_signing_secret
    signature = SlackSignature(secret.get_secret_value()) if secret is not None else None
    return Firebreak(
        settings, config, metrics, redis_client, store, client, session, service, jobs, bolt, signature, embedded
    )
