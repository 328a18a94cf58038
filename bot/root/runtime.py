"""The running bot: the aiohttp app with its runtime loops, Socket Mode, and `serve` until a signal."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.adapters.redis_store import RedisIncidentStore
from bot.root.app import Firebreak, build
from bot.root.settings import Settings
from handlers.alerts import alert_routes
from handlers.web import routes

log = logging.getLogger(__name__)


def web_app(fb: Firebreak) -> web.Application:
    app = web.Application()
    app.add_routes(routes(fb.bolt, RedisIncidentStore(fb.fast_redis), fb.metrics, fb.signature))
    token = fb.settings.alerts_token.get_secret_value() if fb.settings.alerts_token else None
    app.add_routes(alert_routes(token, fb.ack_queue, fb.worker.wake))

    async def background(_: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        # Reminders are jobs too (each incident's next one is scheduled with its record): one worker runs all.
        tasks = [asyncio.create_task(fb.worker.run(stop), name="firebreak:worker")]
        try:
            log.info(
                "reminders: %d open incident(s) checked for their next reminder", await fb.service.reminding.reconcile()
            )
        except Exception:
            log.exception("could not check open incidents' reminders at start; their next save will")
        yield
        stop.set()
        await asyncio.gather(*tasks)
        await fb.worker.shutdown()

    app.cleanup_ctx.append(background)
    return app


async def connect_socket_mode(fb: Firebreak) -> AsyncSocketModeHandler | None:
    """With SLACK_APP_TOKEN, Slack delivers the same requests over a websocket; acks go back on it."""
    if fb.settings.slack_app_token is None:
        return None
    handler = AsyncSocketModeHandler(fb.bolt, fb.settings.slack_app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
    log.info("firebreak connected to Slack over Socket Mode")
    return handler


def settle_heap() -> None:
    """Move everything loaded at start (about 100k objects of libraries and firebreak itself) out of the
    collector's reach: a full collection then scans only what requests create, and stops stalling the event
    loop for 50-70 ms (measured by bench/playbooks.py), which delayed acks past their target."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: HTTP always (probes, metrics), plus Socket Mode when an app token is set."""
    fb = await build(settings)
    settle_heap()
    runner = web.AppRunner(web_app(fb), access_log=None)
    await runner.setup()
    # A deep accept queue: a burst of new connections (an outage makes everyone type at once) must queue,
    # not overflow into 1 s SYN retransmits.
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()
    log.info("firebreak listening on http://%s:%s (Slack at /slack/events)", settings.host, settings.port)
    socket_handler = await connect_socket_mode(fb)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("firebreak shutting down")
        if socket_handler is not None:
            await socket_handler.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()
        await fb.close()
