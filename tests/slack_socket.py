"""Socket Mode for the Slack stand-in: the websocket Slack opens for an app with an app-level token."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import web


class SocketModeEndpoint:
    """Says hello as Slack does, relays envelopes from `send_envelope`, and collects the app's acks."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A00000001"}})
        self.connected.set()
        async for msg in ws:
            data = json.loads(msg.data)
            future = self._acks.pop(data.get("envelope_id", ""), None)
            if future is not None and not future.done():
                future.set_result(data)
        self.connected.clear()
        return ws

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver a request over Socket Mode as Slack does and wait (up to 5 s) for the app's ack."""
        await asyncio.wait_for(self.connected.wait(), 5)
        assert self._ws is not None
        envelope_id = f"env-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self._ws.send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return await asyncio.wait_for(future, 5)
