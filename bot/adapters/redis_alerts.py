"""AlertStore on Redis: links from alerts and groups to incidents, firing sets, storm tallies."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from bot.adapters.redis_keys import Keys
from bot.models import Alert

LINK_SECONDS = 30 * 24 * 3600
FIRING_SECONDS = 24 * 3600
"""Alertmanager resends a firing alert every repeat_interval (hours); a month covers any incident."""

# Count an occurrence once. KEYS: seen set, tally hash. ARGV: occurrence, label.
TALLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# Stop firing. KEYS: incident firing set, global firing hash. ARGV: fingerprint. Returns remaining, or -1.
RESOLVE = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -1 end
return redis.call('SCARD', KEYS[1])
"""


class RedisAlertStore:
    def __init__(self, client: aioredis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self._tally = client.register_script(TALLY)
        self._resolve = client.register_script(RESOLVE)

    async def incident_of(self, key: str) -> int | None:
        found = await self.redis.get(self.keys.alert_link(key))
        return int(found) if found else None

    async def link(self, key: str, incident_id: int) -> None:
        await self.redis.set(self.keys.alert_link(key), incident_id, ex=LINK_SECONDS)

    async def fire(self, incident_id: int, alert: Alert) -> None:
        seen = f"{time.time():.0f}|" + alert.model_dump_json(by_alias=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.incident_firing(incident_id), alert.identity)
            pipe.expire(self.keys.incident_firing(incident_id), LINK_SECONDS)
            pipe.hset(self.keys.alerts_firing, alert.identity, seen)
            await pipe.execute()

    async def resolve(self, incident_id: int, alert: Alert) -> int | None:
        keys = [self.keys.incident_firing(incident_id), self.keys.alerts_firing]
        left = int(await self._resolve(keys=keys, args=[alert.identity]))
        return None if left < 0 else left

    async def firing(self) -> list[Alert]:
        """Alerts still firing: Alertmanager resends a firing alert every repeat_interval (hours), so one not
        heard of for a day has stopped without a resolve reaching firebreak, and is dropped here."""
        found, stale = [], []
        for identity, value in (await self.redis.hgetall(self.keys.alerts_firing)).items():
            seen, _, doc = str(value).partition("|")
            if time.time() - float(seen) > FIRING_SECONDS:
                stale.append(identity)
            else:
                found.append(Alert.model_validate_json(doc))
        if stale:
            await self.redis.hdel(self.keys.alerts_firing, *stale)
        return found

    async def tally(self, bucket: str, occurrence: str, label: str) -> bool:
        keys = [self.keys.alert_seen(bucket), self.keys.alert_tally(bucket)]
        return bool(await self._tally(keys=keys, args=[occurrence, label, LINK_SECONDS]))

    async def tallies(self, bucket: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.alert_tally(bucket))
        return {str(k): int(v) for k, v in raw.items()}

    async def mark(self, queue: str, member: str) -> None:
        await self.redis.sadd(self.keys.alert_memo(f"marked:{queue}"), member)

    async def take(self, queue: str) -> tuple[str | None, int]:
        key = self.keys.alert_memo(f"marked:{queue}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.spop(key)
            pipe.scard(key)
            taken, left = await pipe.execute()
        return (str(taken) if taken else None), int(left)

    async def remember(self, key: str, value: str, *, ttl_seconds: int | None = None) -> str:
        k = self.keys.alert_memo(key)
        await self.redis.set(k, value, nx=True, ex=ttl_seconds or LINK_SECONDS)
        return str(await self.redis.get(k) or value)

    async def collect(self, bucket: str, alert: Alert) -> None:
        key = self.keys.alert_memo(f"collected:{bucket}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, alert.identity, alert.model_dump_json(by_alias=True))
            pipe.expire(key, LINK_SECONDS)
            await pipe.execute()

    async def collected(self, bucket: str) -> list[Alert]:
        docs = await self.redis.hvals(self.keys.alert_memo(f"collected:{bucket}"))
        return [Alert.model_validate_json(d) for d in docs]

    async def put(self, key: str, value: str, *, ttl_seconds: int | None = None) -> None:
        await self.redis.set(self.keys.alert_memo(key), value, ex=ttl_seconds or LINK_SECONDS)

    async def forget(self, *keys: str) -> None:
        names = [self.keys.alert_memo(k) for k in keys] + [self.keys.alert_memo(f"collected:{k}") for k in keys]
        names += [self.keys.alert_tally(k) for k in keys] + [self.keys.alert_seen(k) for k in keys]
        await self.redis.delete(*names)

    async def recall(self, key: str) -> str | None:
        found = await self.redis.get(self.keys.alert_memo(key))
        return str(found) if found else None
