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
from bot.core.jobs import Jobs
from bot.core.metrics import Metrics
from bot.core.ports import Clock
from bot.core.service import IncidentService
from bot.root.settings import Settings
from handlers.registry import Registry
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
    chat = SlackChat(client, config, metrics)
    service = IncidentService(
        store, chat, config, announce_channel=settings.announce_channel, clock=clock, metrics=metrics
    )
    jobs = Jobs(metrics)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt = build_bolt_app(
        service=service,
        claims=RedisClaims(redis_client),
        client=client,
        jobs=jobs,
        metrics=metrics,
        signing_secret=secret,
        registry=registry,
    )
    return Firebreak(settings, config, metrics, redis_client, store, client, session, service, jobs, bolt, embedded)
