"""MitigationStore on Redis: requests as versioned JSON, run steps in a hash, target locks, the audit stream."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from bot.adapters.redis_keys import Keys
from bot.core.errors import AlreadyApplied, Conflict
from bot.models import AuditEntry, Mitigation, Result

# The request number an op allocated: the same op (a retried job) always gets the same number.
# KEYS: ops, sequence. ARGV: op.
NUMBER = """
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then return tonumber(n) end
n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], n)
return n
"""

# Compare-and-set of one request. KEYS: record, ops. ARGV: expected version ('new'), new version, doc, op.
# Returns 1 written, 0 conflict, 2 this op wrote it before.
SAVE = """
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then return 2 end
local cur = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == 'new' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[2]) end
return 1
"""

# All of a run's target locks, or none. KEYS: the locks. ARGV: owner, ttl ms. Returns '' or the key held.
LOCK_ALL = """
for _, k in ipairs(KEYS) do
  local holder = redis.call('GET', k)
  if holder and holder ~= ARGV[1] then return k end
end
for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1], 'PX', ARGV[2]) end
return ''
"""

RENEW_ALL = """
local ok = 1
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) else ok = 0 end
end
return ok
"""

UNLOCK_ALL = """
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
return 1
"""

# Append once per key. KEYS: appended keys, stream. ARGV: key, entry.
AUDIT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

LOCK_CHUNK = 500
"""Targets locked per script call: a 600-pod drain locks in two round trips, not 600."""


class RedisMitigationStore:
    def __init__(self, client: aioredis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self._number = client.register_script(NUMBER)
        self._save = client.register_script(SAVE)
        self._lock = client.register_script(LOCK_ALL)
        self._renew = client.register_script(RENEW_ALL)
        self._unlock = client.register_script(UNLOCK_ALL)
        self._audit = client.register_script(AUDIT)

    async def create(self, mitigation: Mitigation, op: str) -> Mitigation:
        k, inc = self.keys, mitigation.incident_id
        number = int(await self._number(keys=[k.mitigation_ops(inc), k.mitigation_seq(inc)], args=[f"new:{op}"]))
        record = mitigation.model_copy(update={"number": number, "version": 1})
        written = await self._save(
            keys=[k.mitigation(inc, number), k.mitigation_ops(inc)], args=["new", "1", record.model_dump_json(), ""]
        )
        if int(written) == 1:
            return record
        existing = await self.get(inc, number)  # an earlier attempt of this op created it
        assert existing is not None, "a numbered request is never deleted"
        return existing

    async def applied(self, incident_id: int, op: str) -> bool:
        return bool(await self.redis.hexists(self.keys.mitigation_ops(incident_id), op))

    async def get(self, incident_id: int, number: int) -> Mitigation | None:
        doc = await self.redis.hget(self.keys.mitigation(incident_id, number), "doc")
        return Mitigation.model_validate_json(doc) if doc else None

    async def of_incident(self, incident_id: int) -> list[Mitigation]:
        last = await self.redis.get(self.keys.mitigation_seq(incident_id))
        if not last:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in range(1, int(last) + 1):
                pipe.hget(self.keys.mitigation(incident_id, n), "doc")
            docs = await pipe.execute()
        return [Mitigation.model_validate_json(d) for d in docs if d]

    async def save(self, mitigation: Mitigation, op: str) -> Mitigation:
        k, inc = self.keys, mitigation.incident_id
        updated = mitigation.model_copy(update={"version": mitigation.version + 1})
        written = int(
            await self._save(
                keys=[k.mitigation(inc, mitigation.number), k.mitigation_ops(inc)],
                args=[str(mitigation.version), str(updated.version), updated.model_dump_json(), op],
            )
        )
        if written == 2:
            raise AlreadyApplied(())
        if written == 0:
            raise Conflict(f"{mitigation.ref} changed since it was read")
        return updated

    async def step(self, incident_id: int, number: int, index: int, result: Result | None) -> None:
        await self.redis.hset(
            self.keys.mitigation_steps(incident_id, number), str(index), result.model_dump_json() if result else ""
        )

    async def steps(self, incident_id: int, number: int) -> dict[int, Result | None]:
        raw = await self.redis.hgetall(self.keys.mitigation_steps(incident_id, number))
        return {int(i): Result.model_validate_json(v) if v else None for i, v in raw.items()}

    async def lock_targets(self, targets: Sequence[str], owner: str, ttl_seconds: float) -> str | None:
        keys = [self.keys.target_lock(t) for t in dict.fromkeys(targets)]
        taken: list[str] = []
        for i in range(0, len(keys), LOCK_CHUNK):
            chunk = keys[i : i + LOCK_CHUNK]
            held = await self._lock(keys=chunk, args=[owner, int(ttl_seconds * 1000)])
            if held:
                await self._unlock(keys=taken, args=[owner]) if taken else None
                return str(held).removeprefix(self.keys.target_lock(""))
            taken.extend(chunk)
        return None

    async def renew_targets(self, targets: Sequence[str], owner: str, ttl_seconds: float) -> bool:
        keys = [self.keys.target_lock(t) for t in dict.fromkeys(targets)]
        ok = True
        for i in range(0, len(keys), LOCK_CHUNK):
            ok = bool(await self._renew(keys=keys[i : i + LOCK_CHUNK], args=[owner, int(ttl_seconds * 1000)])) and ok
        return ok

    async def unlock_targets(self, targets: Sequence[str], owner: str) -> None:
        keys = [self.keys.target_lock(t) for t in dict.fromkeys(targets)]
        for i in range(0, len(keys), LOCK_CHUNK):
            await self._unlock(keys=keys[i : i + LOCK_CHUNK], args=[owner])

    async def audit(self, entry: AuditEntry, key: str) -> bool:
        k = self.keys
        keys = [k.audit_keys(entry.incident_id), k.audit(entry.incident_id)]
        return bool(await self._audit(keys=keys, args=[key, entry.model_dump_json()]))

    async def audit_log(self, incident_id: int, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        top = f"({before}" if before else "+"
        rows = await self.redis.xrevrange(self.keys.audit(incident_id), max=top, min="-", count=limit) or []
        return [AuditEntry.model_validate_json(fields["e"]) for _, fields in rows if fields]
