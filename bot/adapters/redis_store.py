"""IncidentStore on Redis: incidents as JSON in hashes, timelines as streams, every key under one prefix."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import LockError

from bot.adapters.redis_keys import Keys
from bot.core.errors import Conflict, FirebreakError
from bot.core.ports import LockKind
from bot.models import Incident, TimelineEvent

# Compare-and-set of the record plus its indexes and timeline events, so readers never see half a change.
_SAVE = """
local cur = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == 'new' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3])
if ARGV[5] == '1' then redis.call('SADD', KEYS[3], ARGV[4]) else redis.call('SREM', KEYS[3], ARGV[4]) end
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4]) else redis.call('ZREM', KEYS[4], ARGV[4]) end
if ARGV[7] == '1' then
  redis.call('SET', KEYS[5], ARGV[4])
  redis.call('SET', KEYS[6], ARGV[4])
end
for i = 8, #ARGV do redis.call('XADD', KEYS[2], '*', 'e', ARGV[i]) end
return 1
"""

_APPEND_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

_RETRACT = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

# Lease due entries by pushing their score forward, so a crashed worker's reminders come back after the lease.
_LEASE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""


class RedisIncidentStore:
    def __init__(self, client: aioredis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self._save = client.register_script(_SAVE)
        self._append_once = client.register_script(_APPEND_ONCE)
        self._retract = client.register_script(_RETRACT)
        self._lease_due = client.register_script(_LEASE_DUE)

    async def ping(self) -> None:
        await self.redis.ping()

    async def allocate_id(self) -> int:
        return int(await self.redis.incr(self.keys.sequence))

    async def bind_declare(self, actor: str, fingerprint: str, incident_id: int, ttl_seconds: int) -> int:
        k = self.keys.declare_binding(actor, fingerprint)
        if await self.redis.set(k, str(incident_id), nx=True, ex=ttl_seconds):
            return incident_id
        bound = await self.redis.get(k)
        return int(bound) if bound is not None else incident_id

    async def insert(self, incident: Incident, events: Sequence[TimelineEvent]) -> Incident:
        return await self._write(incident.model_copy(update={"version": 1}), "new", events)

    async def save(self, incident: Incident, events: Sequence[TimelineEvent]) -> Incident:
        updated = incident.model_copy(update={"version": incident.version + 1})
        return await self._write(updated, str(incident.version), events)

    async def _write(self, incident: Incident, expected: str, events: Sequence[TimelineEvent]) -> Incident:
        k = self.keys
        channel = incident.channel_id or "-"
        keys = [
            k.incident(incident.id),
            k.timeline(incident.id),
            k.open_set,
            k.due,
            k.channel(channel),
            k.channel_name(incident.channel_name or "-"),
        ]
        due = incident.next_update_due
        args = [
            expected,
            str(incident.version),
            incident.model_dump_json(),
            str(incident.id),
            "1" if incident.is_open else "0",
            str(due.timestamp()) if due and incident.is_open else "",
            "1" if incident.channel_id else "0",
            *(e.model_dump_json() for e in events),
        ]
        if not await self._save(keys=keys, args=args):
            raise Conflict(f"{incident.ref} changed concurrently")
        return incident

    async def get(self, incident_id: int) -> Incident | None:
        doc = await self.redis.hget(self.keys.incident(incident_id), "doc")
        return Incident.model_validate_json(doc) if doc else None

    async def _by_index(self, key: str) -> Incident | None:
        incident_id = await self.redis.get(key)
        return await self.get(int(incident_id)) if incident_id else None

    async def by_channel(self, channel_id: str) -> Incident | None:
        return await self._by_index(self.keys.channel(channel_id))

    async def by_channel_name(self, name: str) -> Incident | None:
        return await self._by_index(self.keys.channel_name(name))

    async def list_open(self) -> list[Incident]:
        ids = sorted(int(i) for i in await self.redis.smembers(self.keys.open_set))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for incident_id in ids:
                pipe.hget(self.keys.incident(incident_id), "doc")
            docs = await pipe.execute()
        return [Incident.model_validate_json(d) for d in docs if d]

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        # decode_responses=True: ids and fields come back as str
        entries = cast(list[tuple[str, dict[str, str]]], await self.redis.xrange(self.keys.timeline(incident_id)))
        events = [TimelineEvent.model_validate_json(fields["e"]) for _, fields in entries]
        return sorted(events, key=lambda e: e.at)

    async def append(self, incident_id: int, event: TimelineEvent) -> None:
        await self.redis.xadd(self.keys.timeline(incident_id), {"e": event.model_dump_json()})

    async def append_once(self, incident_id: int, dedupe: str, event: TimelineEvent) -> bool:
        keys = [self.keys.timeline_seen(incident_id), self.keys.timeline(incident_id)]
        return bool(await self._append_once(keys=keys, args=[dedupe, event.model_dump_json()]))

    async def retract(self, incident_id: int, dedupe: str, event: TimelineEvent) -> bool:
        keys = [self.keys.timeline_seen(incident_id), self.keys.timeline(incident_id)]
        return bool(await self._retract(keys=keys, args=[dedupe, event.model_dump_json()]))

    async def due_for_reminder(self, now: datetime, lease_seconds: int, limit: int) -> list[int]:
        now_s = now.timestamp()
        ids = await self._lease_due(keys=[self.keys.due], args=[str(now_s), str(now_s + lease_seconds), str(limit)])
        return [int(i) for i in ids]

    @asynccontextmanager
    async def lock(self, kind: LockKind, incident_id: int, timeout_seconds: float) -> AsyncIterator[None]:
        key = self.keys.lock(kind, incident_id)
        lock = self.redis.lock(key, timeout=timeout_seconds, blocking_timeout=timeout_seconds)
        if not await lock.acquire():
            raise FirebreakError(f"Someone else is still working on INC-{incident_id} ({kind}); try again in a minute.")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # it expired while held: nothing left to release
                await lock.release()
