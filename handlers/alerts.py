"""POST /alerts/alertmanager: Alertmanager's webhook, checked and recorded as a durable job before it is answered.

Refusals say why and change nothing: 404 when the endpoint is not enabled (FIREBREAK_ALERTS_TOKEN unset), 401
without the right bearer token (compared in constant time), 413 over the size limit, 400 for a body that is not
Alertmanager's version 4 payload. A 200 means the alerts are recorded and will be placed; a 503 means they
could not be, and Alertmanager retries (the same body is one job however often it comes).
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import ValidationError

from bot.core.alerting import webhook_job
from bot.core.ports import JobQueue
from bot.models import AlertmanagerWebhook

log = logging.getLogger(__name__)

ALERTS_PATH = "/alerts/alertmanager"
MAX_BODY_BYTES = 4 * 1024 * 1024
"""Alertmanager batches a group's alerts into one POST; 4 MiB is thousands of alerts."""
RECORD_SECONDS = 5.0


def alert_routes(token: str | None, queue: JobQueue, wake: object) -> list[web.RouteDef]:
    if token is None:
        log.info(
            "%s is off: set FIREBREAK_ALERTS_TOKEN (and the same bearer token in Alertmanager) to enable it",
            ALERTS_PATH,
        )

    async def alertmanager(request: web.Request) -> web.Response:
        if token is None:
            log.warning("Alertmanager webhook refused: set FIREBREAK_ALERTS_TOKEN to enable %s", ALERTS_PATH)
            return web.json_response(
                {"error": f"{ALERTS_PATH} is not enabled (FIREBREAK_ALERTS_TOKEN is unset)"}, status=404
            )
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _refuse(401, "missing or wrong bearer token")
        body = await _read(request)
        if len(body) > MAX_BODY_BYTES:
            return _too_large()
        try:
            hook = AlertmanagerWebhook.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            return _refuse(400, f"not an Alertmanager webhook (version 4): {_why(exc)}")
        now = datetime.now(UTC)
        try:
            await queue.enqueue(webhook_job(hook, body, now), now, valid_until=now + timedelta(seconds=RECORD_SECONDS))
        except Exception as exc:
            log.warning("Alertmanager webhook not recorded (%s); it will retry", exc)
            return web.json_response({"error": "could not record the alerts; retry"}, status=503)
        if callable(wake):
            wake()
        return web.json_response({"status": "recorded", "alerts": len(hook.alerts)})

    return [web.post(ALERTS_PATH, alertmanager)]


async def _read(request: web.Request) -> bytes:
    """The body, up to one byte past the limit (enough to know it is over)."""
    chunks, size = [], 0
    while size <= MAX_BODY_BYTES:
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _too_large() -> web.Response:
    return _refuse(413, f"body over {MAX_BODY_BYTES} bytes")


def _refuse(status: int, reason: str) -> web.Response:
    """Refused, maybe unread: the connection is closed rather than drained of a body nobody wants."""
    response = web.json_response({"error": reason}, status=status)
    response.force_close()
    return response


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)[:200]
