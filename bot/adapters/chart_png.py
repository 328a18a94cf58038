"""The ChartRenderer: bot/adapters/chart_draw.py's drawing, in a worker thread under a timeout, as drawing is
blocking CPU work. matplotlib is loaded when a renderer is made (at startup, where Prometheus is configured, so
the start-up heap freeze covers it), never in a process that draws no chart."""

from __future__ import annotations

import asyncio
import logging

from bot.core.errors import ChartError
from bot.models.chart import Chart

log = logging.getLogger(__name__)


class PngCharts:
    """Draws charts off the event loop; a drawing that takes longer than `timeout_seconds` counts as failed (its
    thread finishes on its own: a thread can't be cancelled)."""

    def __init__(self, timeout_seconds: float = 20) -> None:
        self.timeout = timeout_seconds
        from bot.adapters.chart_draw import draw  # matplotlib: loaded here, not on import

        self._draw = draw

    async def png(self, chart: Chart) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.to_thread(self._draw, chart)
        except TimeoutError:
            raise ChartError(f"not drawn within {self.timeout:g} s") from None
        except Exception as exc:  # any drawing failure costs the chart only, never the panel; logged in full
            log.exception("drawing the evidence chart %r failed", chart.title)
            raise ChartError(f"{type(exc).__name__}: {exc}"[:300]) from exc
