"""Building one bot from Settings: every adapter, the core service, the job worker, and the bolt app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

import aiohttp
import redis.asyncio as aioredis
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.chart_png import PngCharts
from bot.adapters.embedded_redis import EmbeddedRedis
from bot.adapters.kubernetes import KubeClusters
from bot.adapters.prometheus import PrometheusSource
from bot.adapters.redis_alerts import RedisAlertStore
from bot.adapters.redis_connect import BACKGROUND, TRANSIENT, RedisClients, connect
from bot.adapters.redis_jobs import RedisJobQueue
from bot.adapters.redis_mitigations import RedisMitigationStore
from bot.adapters.redis_pacer import RedisPacer
from bot.adapters.redis_store import RedisIncidentStore
from bot.adapters.slack_chat import SlackChat, make_client
from bot.core.catalogue import catalogue, unresolved
from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ChatError, ConfigError
from bot.core.metrics import Metrics
from bot.core.ports import Clock, utcnow
from bot.core.schedule import Schedule
from bot.core.service import IncidentService
from bot.core.worker import Worker
from bot.root.settings import Settings
from handlers.registry import Registry
from handlers.runner import SLACK_JOB, SlackJobs
from handlers.signing import SlackSignature
from handlers.slack import build_bolt_app, default_registry
from playbooks import discover

log = logging.getLogger(__name__)
STARTUP_LOOKUP_SECONDS = 10


@dataclass
class Firebreak:
    """One running bot: what serve, check and the tests all build the same way."""

    settings: Settings
    config: IncidentConfig
    metrics: Metrics
    redis: aioredis.Redis
    """Background profile: jobs and loops (patient retries)."""
    fast_redis: aioredis.Redis
    """Request-path profile: what runs before Slack's ack (gives up fast)."""
    clients: RedisClients
    store: RedisIncidentStore
    queue: RedisJobQueue
    ack_queue: RedisJobQueue
    """The same queue through the request-path clients: what the listeners record into before the ack."""
    worker: Worker
    client: AsyncWebClient
    session: aiohttp.ClientSession
    """Shared by every call to Slack (Web API and response_url), so connections are reused."""
    service: IncidentService
    bolt: AsyncApp
    signature: SlackSignature | None
    """Checks Slack's HTTP requests; None in Socket Mode, where the HTTP endpoint is off."""

    embedded: EmbeddedRedis | None = None
    clusters: KubeClusters | None = None
    """Kubernetes API clients by context, made when a playbook first needs one."""
    prometheus: PrometheusSource | None = None
    """What the evidence panel asks; None without FIREBREAK_PROMETHEUS_URL."""

    async def close(self) -> None:
        await self.worker.shutdown()
        await self.queue.close()
        await self.session.close()
        await self.clients.aclose()
        if self.clusters is not None:
            await self.clusters.close()
        if self.prometheus is not None:
            self.prometheus.close()
        if self.embedded is not None:
            await self.embedded.stop()


async def redis_url(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    if settings.redis_url is not None:
        return settings.redis_url, None
    embedded = EmbeddedRedis(settings.data_dir)
    return await embedded.start(), embedded


async def connect_redis(settings: Settings) -> tuple[aioredis.Redis, EmbeddedRedis | None]:
    """One background-profile client (and the embedded server, when firebreak runs its own)."""
    url, embedded = await redis_url(settings)
    return connect(url, BACKGROUND), embedded


async def announce_channel_id(settings: Settings, chat: SlackChat) -> str | None:
    """FIREBREAK_ANNOUNCE_CHANNEL as an id: Slack's chat.update and conversations.info take ids only."""
    return await channel_id(settings.announce_channel, "FIREBREAK_ANNOUNCE_CHANNEL", chat)


async def channel_id(ref: str | None, setting: str, chat: SlackChat) -> str | None:
    """A channel setting as an id. A name Slack doesn't know stops the start (like a bad config file). Any other
    failure (Slack unreachable, rate-limited, slow) doesn't: the name is kept and resolved when first used, so
    a Slack blip at start never keeps the bot down."""
    if ref is None:
        return None
    try:
        async with asyncio.timeout(STARTUP_LOOKUP_SECONDS):
            resolved = await chat.resolve_channel(ref)
    except ChatError as exc:
        if exc.code == "channel_not_found":
            raise ConfigError(f"{setting}={ref}: {exc}") from None
        log.warning("could not look up %s=%s yet (%s); will retry when it is used", setting, ref, exc)
        return ref
    except TimeoutError:
        log.warning("Slack took too long to look up %s=%s; will retry when it is used", setting, ref)
        return ref
    if resolved != ref:
        log.info("%s %s is %s", setting, ref, resolved)
    return resolved


async def build(settings: Settings, *, clock: Clock = utcnow, registry: Registry | None = None) -> Firebreak:
    config = load_config(settings.config_file)
    metrics = Metrics()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, session=session)
    chat = SlackChat(client, config, metrics)
    try:
        announce = await announce_channel_id(settings, chat)
        triage = await channel_id(settings.triage_channel, "FIREBREAK_TRIAGE_CHANNEL", chat)
        url, embedded = await redis_url(settings)
    except BaseException:
        await session.close()
        raise
    clients = RedisClients(url)
    background, fast = clients.background, clients.request
    chat.pace = RedisPacer(background, settings.post_spacing_seconds).wait
    schedule = Schedule(config)
    store = RedisIncidentStore(background, schedule=schedule.stamp)
    queue = RedisJobQueue(background)
    playbooks = discover(config)
    for problem in unresolved(catalogue(config.guide), config.evidence, [p.name for p in playbooks]):
        log.warning("stabilizer catalogue: %s names nothing configured; the guide shows it as text", problem)
    clusters = KubeClusters(settings.kubeconfig, settings.kube_context)
    prometheus = (
        PrometheusSource(settings.prometheus_url, timeout_seconds=config.evidence.timeout_seconds)
        if settings.prometheus_url
        else None
    )
    # Before the ack, lookups and the job record go through the fast client: the same service, other store.
    make_service = partial(
        IncidentService,
        chat=chat,
        config=config,
        announce_channel=announce,
        clock=clock,
        metrics=metrics,
        playbooks=playbooks,
    )
    service = make_service(
        store,
        cluster=(clusters, RedisMitigationStore(background), queue),
        alerts=(RedisAlertStore(background), queue),
        triage_channel=triage,
        metrics_source=prometheus,
        chart_renderer=PngCharts() if prometheus and config.evidence.chart_max_panels else None,
    )
    ack_service = make_service(RedisIncidentStore(fast, schedule=schedule.stamp))
    registry = registry or default_registry()
    runner = SlackJobs(service, client, registry, metrics, transient=TRANSIENT)
    assert service.alerting is not None, "wired above"
    alerting = service.alerting
    worker = Worker(
        queue,
        {SLACK_JOB: runner.run, **service.mitigation.runners(), **service.reminding.runners(), **alerting.runners()},
        lease_seconds=settings.job_lease_seconds,
        # Jobs are due by the wall clock; reminders by the incident clock, which tests move ahead of it.
        now=lambda: max(utcnow(), clock()),
        metrics=metrics,
        transient=TRANSIENT,
    )
    ack_queue = RedisJobQueue(fast, record_client=clients.record)
    bolt = build_bolt_app(
        service=ack_service,
        queue=ack_queue,
        client=client,
        wake=worker.wake,
        registry=registry,
        transient=TRANSIENT,
    )
    secret = settings.slack_signing_secret
    signature = SlackSignature(secret.get_secret_value()) if secret is not None else None
    return Firebreak(
        settings,
        config,
        metrics,
        background,
        fast,
        clients,
        store,
        queue,
        ack_queue,
        worker,
        client,
        session,
        service,
        bolt,
        signature,
        embedded,
        clusters,
        prometheus,
    )
