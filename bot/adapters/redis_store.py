"""IncidentStore on Redis: incidents as JSON in hashes, timelines as streams, every key under one prefix.

Every write carries the op key of the operation making it, so a write repeated after a crash or a lost
reply (redis-py retries on connection errors) applies nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import cast

import redis.asyncio as aioredis
from pydantic import TypeAdapter

from bot.adapters import redis_scripts as lua
from bot.adapters.redis_keys import Keys
from bot.core.errors import AlreadyApplied, Busy, Conflict
from bot.core.jobs import Job
from bot.core.ports import LockKind
from bot.models import Incident, TimelineEvent

EVENTS = TypeAdapter(list[TimelineEvent])
CHANNEL_CLAIM_MS = 7 * 24 * 3600 * 1000


REMINDER_JOB = "reminder"


def reminder_job(incident: Incident) -> Job | None:
    """The durable job that acts for the incident at `reminder.at`; its id names the time, so a moved
    reminder is a new job and the old one is withdrawn in the same write."""
    at = incident.reminder.at
    if at is None or not incident.is_open:
        return None
    return Job(
        id=f"{REMINDER_JOB}:{incident.id}:{int(at.timestamp() * 1000)}",
        kind=REMINDER_JOB,
        payload={"incident_id": incident.id, "at": at.isoformat()},
        created_at=at,
    )


class RedisIncidentStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys | None = None,
        *,
        schedule: Callable[[Incident], Incident] | None = None,
    ) -> None:
        """`schedule` sets the record's next reminder time before each write (the core's Schedule.stamp)."""
        self.redis = client
        self.keys = keys or Keys()
        self.schedule = schedule or (lambda incident: incident)
        self._save = client.register_script(lua.SAVE)
        self._append = client.register_script(lua.APPEND)
        self._pin = client.register_script(lua.PIN)
        self._unpin = client.register_script(lua.UNPIN)
        self._bind = client.register_script(lua.BIND_DECLARE)
        self._claim = client.register_script(lua.CLAIM)
        self._release = client.register_script(lua.RELEASE)

    async def ping(self) -> None:
        await self.redis.ping()

    async def bind_declare(self, actor: str, fingerprint: str, ttl_seconds: int) -> tuple[int, bool]:
        k = self.keys
        keys = [k.declare_binding(actor, fingerprint), k.sequence, k.open_set]
        incident_id, new = await self._bind(keys=keys, args=[ttl_seconds, k.incident("")])
        return int(incident_id), bool(new)

    async def insert(self, incident: Incident, events: Sequence[TimelineEvent], op: str) -> Incident:
        return await self._write(self.schedule(incident.model_copy(update={"version": 1})), "new", events, op)

    async def save(self, incident: Incident, events: Sequence[TimelineEvent], op: str) -> Incident:
        updated = self.schedule(incident.model_copy(update={"version": incident.version + 1}))
        return await self._write(updated, str(incident.version), events, op)

    async def _write(self, incident: Incident, expected: str, events: Sequence[TimelineEvent], op: str) -> Incident:
        k = self.keys
        keys = [
            k.incident(incident.id),
            k.timeline(incident.id),
            k.open_set,
            k.jobs_due,
            k.channel(incident.channel_id or "-"),
            k.channel_name(incident.channel_name or "-"),
            k.applied(incident.id),
            k.jobs_wake,
        ]
        job = reminder_job(incident)
        docs = [e.model_dump_json() for e in events]
        args = [
            expected,
            str(incident.version),
            incident.model_dump_json(),
            str(incident.id),
            "1" if incident.is_open else "0",
            "1" if incident.channel_id else "0",
            op,
            job.id if job else "",
            job.model_dump_json() if job else "",
            repr(job.created_at.timestamp()) if job else "",
            k.job_prefix,
            "[" + ",".join(docs) + "]",
            *docs,
        ]
        status, saved = await self._save(keys=keys, args=args)
        if int(status) == 2:
            raise AlreadyApplied(EVENTS.validate_json(saved))
        if not int(status):
            raise Conflict(f"{incident.ref} changed concurrently")
        return incident

    async def applied(self, incident_id: int, op: str) -> list[TimelineEvent] | None:
        saved = cast(str | None, await self.redis.hget(self.keys.applied(incident_id), op))
        if saved is None:
            return None
        # APPEND records the one event it added; SAVE records the list of events it saved.
        return EVENTS.validate_json(saved) if saved.startswith("[") else [TimelineEvent.model_validate_json(saved)]

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

    async def append(self, incident_id: int, event: TimelineEvent, op: str) -> bool:
        keys = [self.keys.applied(incident_id), self.keys.timeline(incident_id)]
        return bool(await self._append(keys=keys, args=[op, event.model_dump_json()]))

    async def pin(self, incident_id: int, message_ts: str, source: str, event: TimelineEvent) -> bool:
        keys = [self.keys.pin_sources(incident_id, message_ts), self.keys.timeline(incident_id)]
        return bool(await self._pin(keys=keys, args=[source, event.model_dump_json()]))

    async def unpin(self, incident_id: int, message_ts: str, source: str, event: TimelineEvent) -> bool:
        keys = [self.keys.pin_sources(incident_id, message_ts), self.keys.timeline(incident_id)]
        return bool(await self._unpin(keys=keys, args=[source, event.model_dump_json()]))

    async def reserve_channel_name(self, name: str, incident_id: int) -> bool:
        key = self.keys.channel_claim(name)
        return bool(await self._claim(keys=[key], args=[str(incident_id), CHANNEL_CLAIM_MS]))

    @asynccontextmanager
    async def lock(self, kind: LockKind, incident_id: int, owner: str, ttl_seconds: float) -> AsyncIterator[None]:
        """Held by `owner` (an op key): the same op, run again after a crash, takes its own lock back at once;
        anyone else is refused at once rather than left waiting, and the lock expires with its ttl."""
        key = self.keys.lock(kind, incident_id)
        if not await self._claim(keys=[key], args=[owner, int(ttl_seconds * 1000)]):
            raise Busy(f"INC-{incident_id} is being worked on by another request ({kind}); it will finish shortly.")
        try:
            yield
        finally:
            await self._release(keys=[key], args=[owner])
