"""Post-ack work: tracked tasks, so shutdown and tests can wait for them and nothing fails silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.core.metrics import Metrics

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self, metrics: Metrics | None = None, max_running: int = 32) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._metrics = metrics
        # Bounded so that a burst of slow work never crowds new requests (and their acks) out of the event loop.
        self._running = asyncio.Semaphore(max_running)

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` after the ack. It should report its own errors; anything escaping is logged, never lost."""
        task = asyncio.get_running_loop().create_task(self._bounded(coro), name=f"firebreak:{name}")
        self._tasks.add(task)
        if self._metrics:
            self._metrics.background_tasks.inc()
        task.add_done_callback(self._done)
        return task

    async def _bounded(self, coro: Coroutine[Any, Any, Any]) -> Any:
        async with self._running:
            return await coro

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._metrics:
            self._metrics.background_tasks.dec()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background job %s failed", task.get_name(), exc_info=exc)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a grace period, not a cancel scope
        """Wait for running jobs (and jobs they start) to finish; cancel what is left after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)
