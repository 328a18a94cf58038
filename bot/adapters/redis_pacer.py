"""Posting at most about one message a second per channel, across every replica: each post reserves the next
free slot of its channel in Redis (by Redis's own clock) and waits for it. Slack allows one message a second
per channel; a storm of declarations (twenty announcements at once) is spread out instead of answered with 429s."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.adapters.redis_keys import Keys

# KEYS: the channel's next free slot. ARGV: spacing (s). Returns the wait before the reserved slot (s).
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, last + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], tostring(slot), 'PX', math.floor((slot - now + 60) * 1000))
return tostring(slot - now)
"""

MAX_WAIT_SECONDS = 120.0
"""A post is never held longer than this (a backlog of 120 posts to one channel): past it, it goes, and Slack's
own rate limit (429 with Retry-After, which the client honours) paces it."""


class RedisPacer:
    def __init__(self, client: aioredis.Redis, spacing: float, keys: Keys | None = None) -> None:
        self.redis = client
        self.spacing = spacing
        self.keys = keys or Keys()
        self._reserve = client.register_script(RESERVE)

    async def wait(self, channel: str) -> None:
        if self.spacing <= 0:
            return
        delay = float(await self._reserve(keys=[self.keys.post_slot(channel)], args=[self.spacing]))
        if delay > 0:
            await asyncio.sleep(min(delay, MAX_WAIT_SECONDS))
