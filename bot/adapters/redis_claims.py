"""Idempotency claims on Redis: SET NX with a ttl, so the first delivery wins and repeats are recognised."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.adapters.redis_keys import Keys
from bot.core.ports import ClaimKind


class RedisClaims:
    def __init__(self, client: aioredis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()

    async def claim(self, kind: ClaimKind, ident: str, ttl_seconds: int) -> bool:
        return bool(await self.redis.set(self.keys.claim(kind, ident), "1", nx=True, ex=ttl_seconds))
