"""HTTP routes: Slack's single endpoint, health and readiness probes, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.core.ports import IncidentStore

SLACK_PATH = "/slack/events"


def request_kind(req: AsyncBoltRequest) -> str:
    body = req.body if isinstance(req.body, dict) else {}
    if "command" in body:
        return "command"
    kind = body.get("type")
    return str(kind) if isinstance(kind, str) and kind.isidentifier() else "other"


def routes(bolt: AsyncApp, store: IncidentStore, metrics: Metrics) -> list[web.RouteDef]:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        bolt_req = await to_bolt_request(request)
        bolt_resp = await bolt.async_dispatch(bolt_req)
        response = await to_aiohttp_response(bolt_resp)
        metrics.ack_seconds.observe(time.perf_counter() - started)
        metrics.slack_requests.labels(request_kind(bolt_req), str(bolt_resp.status)).inc()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(store.ping(), timeout=2)
        except Exception as exc:
            return web.json_response({"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"}, status=503)
        return web.json_response({"status": "ready", "redis": "ok"})

    async def prometheus(_: web.Request) -> web.Response:
        resp = web.Response(body=metrics.render())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    return [
        web.post(SLACK_PATH, slack_events),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", prometheus),
    ]
