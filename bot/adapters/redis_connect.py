"""Redis clients: tight timeouts where a person waits, patient retries in the background, Sentinel for failover.

Two profiles share one server. On the request path (everything before Slack's ack) a command gives up
within a fraction of a second, so the ack can say "nothing was done" well inside Slack's 3 s. In the
background (jobs, reminders) commands retry through a restart with backoff. Every command firebreak sends
is safe to send twice (writes carry op keys or owner tokens), which is what makes retrying them right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.errors import ConfigError

TRANSIENT = (RedisConnectionError, RedisTimeoutError)
"""What a store call raises while Redis is away; the work is retried, not reported as a bug."""
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True)
class Profile:
    socket_timeout: float
    connect_timeout: float
    retries: int
    backoff_cap: float
    max_connections: int


REQUEST_PATH = Profile(socket_timeout=0.3, connect_timeout=0.2, retries=1, backoff_cap=0.1, max_connections=1000)
"""Before the ack: fail fast (about 1 s in the worst case), so the user hears "nothing was done" in time."""
RECORD = Profile(socket_timeout=0.3, connect_timeout=0.2, retries=0, backoff_cap=0.0, max_connections=1000)
"""Recording a job before the ack: no automatic retry, so the caller knows whether an attempt may have landed."""
BACKGROUND = Profile(socket_timeout=1.0, connect_timeout=0.5, retries=4, backoff_cap=2.0, max_connections=200)
"""Jobs and loops: ride through a restart or a failover; a longer outage is retried by the job itself."""


def never_sent(exc: BaseException) -> bool:
    """A failure to connect (refused, no socket, connect timeout, no master known): the command was never sent.

    redis-py words these "Error <errno> connecting to ..." and "Timeout connecting to server"; any other
    failure (reset, closed, read timeout) may have come after Redis executed the command.
    """
    if isinstance(exc, MasterNotFoundError):
        return True
    return " connecting to " in str(exc) or "Timeout connecting" in str(exc)


class RedisClients:
    """The three clients firebreak uses, on one server (or one Sentinel-managed master), closed together."""

    def __init__(self, url: str) -> None:
        self._sentinels: list[Sentinel] = []
        self.background = self._connect(url, BACKGROUND)
        self.request = self._connect(url, REQUEST_PATH)
        self.record = self._connect(url, RECORD)

    def _connect(self, url: str, profile: Profile) -> aioredis.Redis:
        client, sentinel = connect_with(url, profile)
        if sentinel is not None:
            self._sentinels.append(sentinel)
        return client

    async def aclose(self) -> None:
        for client in (self.background, self.request, self.record):
            await client.aclose()
        for sentinel in self._sentinels:
            for s in sentinel.sentinels:
                await s.aclose()


def connect(url: str, profile: Profile) -> aioredis.Redis:
    """A client for `url`: redis://, rediss://, unix://, or redis+sentinel://host:port,host:port/master/db.

    With Sentinel, the sentinel connections stay open until the process ends; RedisClients closes them."""
    return connect_with(url, profile)[0]


def connect_with(url: str, profile: Profile) -> tuple[aioredis.Redis, Sentinel | None]:
    retry = Retry(ExponentialWithJitterBackoff(cap=profile.backoff_cap, base=0.02), profile.retries)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": profile.socket_timeout,
        "socket_connect_timeout": profile.connect_timeout,
        "retry": retry,
        "retry_on_error": list(TRANSIENT),
        "health_check_interval": 15,
        # No CLIENT SETINFO on connect: extra round trips per new connection, paid by the acks of a burst.
        "driver_info": None,
    }
    if url.split("://", 1)[0] in SENTINEL_SCHEMES:
        target = parse_sentinel_url(url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels,
            sentinel_kwargs={
                "socket_timeout": profile.socket_timeout,
                "socket_connect_timeout": profile.connect_timeout,
                "password": target.sentinel_password,
            },
        )
        client = sentinel.master_for(
            target.master,
            db=target.db,
            password=target.password,
            ssl=target.ssl,
            max_connections=profile.max_connections,
            **options,
        )
        return cast(aioredis.Redis, client), sentinel
    # Not BlockingConnectionPool: it serialises every checkout and release through one asyncio.Condition,
    # which made acks queue behind each other under a burst (bench/ack_latency.py).
    pool = aioredis.ConnectionPool.from_url(url, max_connections=profile.max_connections, **options)
    return aioredis.Redis.from_pool(pool), None


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def parse_sentinel_url(url: str) -> SentinelTarget:
    """`redis+sentinel://[:password@]host:26379[,host:26379...]/<master name>[/<db>][?sentinel_password=...]`.

    The form redis-sentinel-url and several tools share (redis-py parses no Sentinel URL of its own).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    sentinels = []
    for hostport in filter(None, netloc.split(",")):
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "26379")
        if not host or not port.isdigit():
            raise ConfigError(f"REDIS_URL: {hostport!r} is not host:port in {_redacted(url)}")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ConfigError(
            f"REDIS_URL {_redacted(url)} must look like redis+sentinel://host:26379,host2:26379/<master name>/<db>"
        )
    if len(path) > 1 and not path[1].isdigit():
        raise ConfigError(f"REDIS_URL: the database after the master name must be a number, not {path[1]!r}")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return SentinelTarget(
        sentinels=sentinels,
        master=unquote(path[0]),
        db=int(path[1]) if len(path) > 1 else 0,
        password=password,
        sentinel_password=unquote(query["sentinel_password"]) if "sentinel_password" in query else None,
        ssl=parts.scheme.startswith("rediss"),
    )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return url.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
