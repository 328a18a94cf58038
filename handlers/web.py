"""HTTP routes: Slack's single endpoint (signature first, then bolt), health and readiness probes, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.core.ports import IncidentStore
from handlers.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SlackSignature

log = logging.getLogger(__name__)
SLACK_PATH = "/slack/events"
SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")


def request_kind(body: Any) -> str:
    body = body if isinstance(body, dict) else {}
    if "command" in body:
        return "command"
    kind = body.get("type")
    return str(kind) if isinstance(kind, str) and kind.isidentifier() else "other"


def _ssl_check(raw: bytes, content_type: str) -> bool:
    """Slack's periodic certificate check of a slash command's URL: answered 200 and otherwise ignored
    (bolt's own SslCheck does the same), so nothing else of an unsigned request is read."""
    return content_type == "application/x-www-form-urlencoded" and (
        raw.startswith(b"ssl_check=1") or b"&ssl_check=1" in raw
    )


def refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def routes(
    bolt: AsyncApp, store: IncidentStore, metrics: Metrics, signature: SlackSignature | None
) -> list[web.RouteDef]:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        response, kind = await _slack(request)
        metrics.ack_seconds.observe(time.perf_counter() - started)
        metrics.slack_requests.labels(kind, str(response.status)).inc()
        return response

    async def _slack(request: web.Request) -> tuple[web.Response, str]:
        if signature is None:
            return refuse(404, "firebreak takes Slack's requests over Socket Mode; this endpoint is off"), "refused"
        raw = await request.read()
        if _ssl_check(raw, request.content_type):
            return web.Response(text=""), "ssl_check"
        if not signature.is_valid(raw, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)):
            # Nothing of an unsigned request is trusted, parsed or logged.
            return refuse(401, "invalid request"), "unsigned"
        if request.content_type not in SLACK_CONTENT_TYPES:
            return refuse(400, f"unexpected content type {request.content_type!r}"), "malformed"
        try:
            body = raw.decode("utf-8")
            bolt_req = AsyncBoltRequest(body=body, query=request.query_string, headers=request.headers)  # type: ignore[arg-type]
        except Exception as exc:  # bad UTF-8, bad JSON, JSON that is not an object: never the caller's 500
            log.warning("signed Slack request with a malformed body: %s", type(exc).__name__)
            return refuse(400, "malformed body"), "malformed"
        if not isinstance(bolt_req.body, dict):
            return refuse(400, "malformed body: expected an object"), "malformed"
        try:
            bolt_resp = await bolt.async_dispatch(bolt_req)
        except Exception as exc:
            log.warning("signed Slack request bolt could not route: %s", type(exc).__name__)
            return refuse(400, "malformed payload"), "malformed"
        if bolt_resp.status >= 500:
            # bolt answers 500 when a signed payload lacks what its type requires (its matchers raise, and it
            # logs why); Slack never sends such a thing, so it is the sender's error, not the server's.
            return refuse(400, "malformed payload"), "malformed"
        return await to_aiohttp_response(bolt_resp), request_kind(bolt_req.body)

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
