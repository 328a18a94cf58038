"""JobQueue on Redis: a hash per job, one sorted set of due times and leases, pub/sub to wake other replicas.

Written here rather than taken from arq, saq or taskiq: none gives a permanent dedupe by deterministic id,
a renewable lease that another replica takes over within seconds of a SIGKILL, and one atomic claim for both
immediate jobs and due times (arq needs redis<6 and never renews its in-progress key; saq needs a sweep
plus an abort grace and retries nothing by default; taskiq's reclaim waits for unrelated traffic).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.client import PubSub

from bot.adapters.redis_connect import TRANSIENT, never_sent
from bot.adapters.redis_keys import Keys
from bot.core.jobs import Job, NotSent, TooLate

log = logging.getLogger(__name__)

RECORD_ATTEMPTS = 3
MAX_CRASHES = 5
"""A job that was running when its worker died this many times is set aside rather than run again."""
DONE_TTL_SECONDS = 24 * 3600
"""How long a finished job's id still refuses a duplicate (Slack retries come within minutes)."""

# ARGV[4]: valid until (epoch seconds, '' for no limit), checked against Redis's own clock.
_ENQUEUE = """
if ARGV[4] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1000000 > tonumber(ARGV[4]) then return -1 end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'attempts', 0, 'owner', '', 'state', 'queued')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1
"""

# The most overdue entry: a queued job whose time came, or a leased one whose lease ran out (its owner died).
# A job whose workers died under it too often (it kills the process) is set aside, not run again.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #ids == 0 then return false end
local id = ids[1]
local key = ARGV[4] .. id
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', KEYS[1], id)
  return {id, false, 0}
end
if redis.call('HGET', key, 'state') == 'running' then
  if redis.call('HINCRBY', key, 'crashes', 1) > tonumber(ARGV[5]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', key, 'state', 'dead', 'owner', '')
    redis.call('SADD', KEYS[2], id)
    return {id, false, -1}
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], id)
local attempts = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'owner', ARGV[3], 'state', 'running')
return {id, redis.call('HGET', key, 'doc'), attempts}
"""

_RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
return 1
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'owner', '', 'state', 'done')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], 'owner', '', 'state', 'queued')
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1
"""


class RedisJobQueue:
    def __init__(
        self, client: aioredis.Redis, keys: Keys | None = None, *, record_client: aioredis.Redis | None = None
    ) -> None:
        """`record_client`, for enqueue, must not retry by itself (redis_connect.RECORD): this class does."""
        self.redis = client
        self.keys = keys or Keys()
        self._record_client = record_client or client
        self._record = self._record_client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)
        self._pubsub: PubSub | None = None

    async def enqueue(self, job: Job, due: datetime, *, valid_until: datetime | None = None) -> bool:
        """Retried here rather than by redis-py, because only here is it known whether an attempt may have
        reached Redis: a repeat that finds the job recorded then means an earlier attempt of ours did it."""
        k = self.keys
        keys = [k.job(job.id), k.jobs_due, k.jobs_wake]
        limit = repr(valid_until.timestamp()) if valid_until else ""
        args: list[str | float] = [job.id, job.model_dump_json(), due.timestamp(), limit]
        maybe_sent = False
        for attempt in range(RECORD_ATTEMPTS):
            try:
                recorded = int(await self._record(keys=keys, args=args))
            except TRANSIENT as exc:
                maybe_sent = maybe_sent or not never_sent(exc)
                if attempt + 1 == RECORD_ATTEMPTS:
                    if maybe_sent:
                        raise
                    raise NotSent(f"Redis unreachable: {exc}") from exc
                # Redis restarted: every idle pooled connection is dead too, so don't try them one by one.
                await self._record_client.connection_pool.disconnect(inuse_connections=False)
                await asyncio.sleep(0.02 * (attempt + 1))
                continue
            if recorded < 0:
                raise TooLate(f"job {job.id} reached Redis after its deadline; not recorded")
            return bool(recorded) or maybe_sent
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        await self.redis.ping()

    async def exists(self, job_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.job(job_id)))

    async def claim(self, owner: str, now: datetime, lease_seconds: float) -> Job | None:
        k = self.keys
        args: list[str | float] = [
            now.timestamp(),
            now.timestamp() + lease_seconds,
            owner,
            k.job_prefix,
            MAX_CRASHES,
        ]
        found = await self._claim(keys=[k.jobs_due, k.jobs_dead], args=args)
        if not found:
            return None
        job_id, doc, attempts = found
        if int(attempts) < 0:
            log.error("job %s: its worker died %d times running it; set aside in %s", job_id, MAX_CRASHES, k.jobs_dead)
            return None
        if not doc:
            return None
        try:
            return Job.model_validate_json(doc).model_copy(update={"attempts": int(attempts)})
        except ValidationError as exc:
            log.error("job %s can't be read by this version (%s); set aside in %s", job_id, exc, k.jobs_dead)
            await self._bury(job_id)
            return None

    async def _bury(self, job_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.jobs_due, job_id)
            pipe.hset(self.keys.job(job_id), mapping={"state": "dead", "owner": ""})
            pipe.sadd(self.keys.jobs_dead, job_id)
            await pipe.execute()

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        keys = [self.keys.job(job_id), self.keys.jobs_due]
        return bool(await self._renew(keys=keys, args=[owner, until.timestamp(), job_id]))

    async def complete(self, job_id: str, owner: str) -> None:
        keys = [self.keys.job(job_id), self.keys.jobs_due]
        await self._complete(keys=keys, args=[owner, job_id, DONE_TTL_SECONDS])

    async def release(self, job_id: str, owner: str, due: datetime) -> None:
        keys = [self.keys.job(job_id), self.keys.jobs_due, self.keys.jobs_wake]
        await self._release(keys=keys, args=[owner, job_id, due.timestamp()])

    async def next_due(self) -> datetime | None:
        first = await self.redis.zrange(self.keys.jobs_due, 0, 0, withscores=True)
        return datetime.fromtimestamp(float(first[0][1]), UTC) if first else None

    async def pending(self, due_by: datetime | None = None) -> int:
        if due_by is None:
            return int(await self.redis.zcard(self.keys.jobs_due))
        return int(await self.redis.zcount(self.keys.jobs_due, "-inf", due_by.timestamp()))

    async def wait(self, seconds: float) -> None:
        try:
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.keys.jobs_wake)
            await self._pubsub.get_message(timeout=seconds)
        except Exception:
            # A broken subscription (Redis restarted): start a new one next time; the worker's own due-time
            # sleep still bounds how late anything runs.
            log.debug("job wake-up subscription failed; resubscribing", exc_info=True)
            await self.close()
            await asyncio.sleep(min(seconds, 1.0))

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:
                log.debug("closing the job wake-up subscription failed", exc_info=True)
