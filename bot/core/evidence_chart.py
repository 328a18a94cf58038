"""The evidence panel's chart: the key signals over the incident's window, asked of the metrics source as range
queries (each failing on its own), then drawn and uploaded through ports. Whatever fails, the panel still posts,
saying why it has no chart."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.errors import ChartError, ChatError, MetricsError
from bot.core.evidence_config import EvidenceConfig, Signal, fill
from bot.core.ports import ChartRenderer, Chat, MetricsSource, Series
from bot.models import Incident, Mitigated, TimelineEvent
from bot.models.chart import Chart, ChartImage, LeftOut, Line, Marker, Panel

log = logging.getLogger(__name__)
LEAD = timedelta(minutes=30)
"""The window opens this long before impact started (or the incident was declared): what normal looked like."""
LONGEST = timedelta(hours=24)
"""... but reaches back at most this far: a long incident shows its last day."""
POINTS = 240
CHART_SECONDS = 30.0
"""The most the panel waits for its chart (range queries, drawing, upload) before posting without it."""
MIN_STEP = timedelta(seconds=15)
"""At most ~240 points per series, never closer than 15 s (a typical scrape interval)."""
DEFAULT_EXTRA = ("p99 latency", "Request rate")
MITIGATION_MARKS = frozenset({"started", "done", "failed", "interrupted"})
"""The mitigation steps the chart marks: a run starting, and how it ended."""
MAX_MITIGATION_MARKERS = 6
MAX_LINES = 5
"""Series drawn per panel: a signal's query should answer one (aggregate with sum/avg/max); more is noise."""


@dataclass(frozen=True)
class Pictured:
    """What the panel shows of its chart: the image, or why there is none, and what the chart left out."""

    image: ChartImage | None = None
    note: str | None = None
    left_out: tuple[LeftOut, ...] = ()


def chart_signals(config: EvidenceConfig) -> list[Signal]:
    """`evidence.chart` by name, or by default the SLO signals, then p99 latency and the request rate."""
    by_name = {s.name: s for s in config.signals}
    if config.chart:
        return [by_name[name] for name in config.chart]
    extra = [by_name[name] for name in DEFAULT_EXTRA if name in by_name and by_name[name].slo is None]
    return [s for s in config.signals if s.slo is not None] + extra


def window(incident: Incident, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """(start, end, step) of the chart's range queries: the start a whole number of steps before now, so the last
    point is now (a range query evaluates at start, start + step, ... up to end)."""
    began = min(incident.impact_started_at or incident.declared_at, incident.declared_at, now)
    span = (now - max(began - LEAD, now - LONGEST)).total_seconds()
    step = max(MIN_STEP.total_seconds(), math.ceil(span / (POINTS - 1)))  # points = steps + 1
    return now - timedelta(seconds=step * math.floor(span / step)), now, timedelta(seconds=step)


def markers(
    incident: Incident, start: datetime, end: datetime, events: Sequence[TimelineEvent] = ()
) -> tuple[Marker, ...]:
    """The incident's moments in the window, and its mitigations' runs (the latest few) from the timeline."""
    moments = [
        Marker(at=at, label=label, kind=kind)
        for at, label, kind in (
            (incident.impact_started_at, "impact started", "impact"),
            (incident.declared_at, "declared", "declared"),
            (incident.recovered_at, "recovered", "recovered"),
        )
        if at is not None and start <= at <= end
    ]
    runs = [
        Marker(at=e.at, label=f"#{p.number} {p.playbook} {p.action}", kind="mitigation")
        for e in events
        if isinstance(p := e.payload, Mitigated) and p.action in MITIGATION_MARKS and start <= e.at <= end
    ]
    return tuple(moments + runs[-MAX_MITIGATION_MARKERS:])


def lines(series: list[Series]) -> tuple[Line, ...]:
    """The series with data, NaN and infinities dropped (no data at that point, or 0/0)."""
    out = []
    for s in series[:MAX_LINES]:
        points = tuple((t, v) for t, v in s.points if math.isfinite(v))
        if points:
            out.append(Line(labels=dict(s.labels), points=points))
    return tuple(out)


def title(incident: Incident) -> str:
    scope = ", ".join(f"{k}={v}" for k, v in sorted(incident.scope.items()))
    return f"{incident.ref} · {scope}" if scope else incident.ref


class Charting:
    """Asks for the chart's series, has them drawn and uploads the image."""

    def __init__(
        self, config: EvidenceConfig, source: MetricsSource, chat: Chat, renderer: ChartRenderer | None
    ) -> None:
        self.config = config
        self.source = source
        self.chat = chat
        self.renderer = renderer

    async def chart(
        self, incident: Incident, now: datetime, events: Sequence[TimelineEvent] = ()
    ) -> Chart | LeftOut | None:
        """The chart, or why there is none (no signal had data); None when no chart signal fits the scope."""
        start, end, step = window(incident, now)
        scope = dict(incident.scope)
        wanted: list[tuple[Signal, str]] = []
        left_out: list[LeftOut] = []
        for signal in chart_signals(self.config):
            query = fill(signal.query, scope)
            if isinstance(query, str):
                wanted.append((signal, query))
            elif self.config.chart:  # named on purpose: say why it is missing; a default just doesn't apply
                left_out.append(LeftOut(name=signal.name, reason=f"the scope lacks {', '.join(query)}"))
        wanted = wanted[: self.config.chart_max_panels]
        if not wanted and not left_out:
            return None
        gate = asyncio.Semaphore(self.config.concurrency)

        async def ask(query: str) -> tuple[Line, ...] | str:
            async with gate:
                try:
                    return lines(await self.source.range(query, start, end, step)) or "no data over the window"
                except MetricsError as exc:
                    return exc.reason

        answers = await asyncio.gather(*(ask(query) for _, query in wanted))
        panels = []
        for (signal, _), answer in zip(wanted, answers, strict=True):
            if isinstance(answer, str):
                left_out.append(LeftOut(name=signal.name, reason=answer))
            else:
                panels.append(Panel(name=signal.name, unit=signal.unit, slo=signal.slo, lines=answer))
        if not panels:
            reasons = "; ".join(f"{x.name}: {x.reason}" for x in left_out)
            return LeftOut(name="chart", reason=f"no signal could be plotted ({reasons})")
        return Chart(
            title=title(incident),
            start=start,
            end=end,
            step_seconds=step.total_seconds(),
            panels=tuple(panels),
            markers=markers(incident, start, end, events),
            left_out=tuple(left_out),
        )

    async def picture_within(
        self, incident: Incident, now: datetime, timeline: Callable[[], Awaitable[Sequence[TimelineEvent]]]
    ) -> Pictured:
        """`picture`, bounded by CHART_SECONDS, and never raising: the chart must never cost the panel, so even an
        unexpected error (logged, with its traceback) only leaves it out, saying so."""
        try:
            async with asyncio.timeout(CHART_SECONDS):
                return await self.picture(incident, now, await timeline())
        except TimeoutError:
            return Pictured(note=f"No chart: it was not ready within {CHART_SECONDS:g} s.")
        except Exception:
            log.exception("the evidence chart of %s failed", incident.ref)
            return Pictured(note="No chart: it failed unexpectedly (firebreak's log has the details).")

    async def picture(self, incident: Incident, now: datetime, events: Sequence[TimelineEvent] = ()) -> Pictured:
        """The chart drawn and uploaded, or why not; never raises for a failure the panel can show."""
        if self.renderer is None or self.config.chart_max_panels == 0:
            return Pictured()
        chart = await self.chart(incident, now, events)
        if chart is None:
            return Pictured()
        if isinstance(chart, LeftOut):
            return Pictured(note=f"No chart: {chart.reason}.")
        try:
            png = await self.renderer.png(chart)
        except ChartError as exc:
            return Pictured(note=f"No chart: drawing it failed ({exc}).", left_out=chart.left_out)
        name = f"{incident.ref.lower()}-evidence-{now:%Y%m%dT%H%M%S}.png"
        try:
            file_id = await self.chat.upload_image(name, chart.title, chart.alt_text, png)
        except ChatError as exc:
            return Pictured(note=f"No chart: uploading it failed. {exc}", left_out=chart.left_out)
        image = ChartImage(file_id=file_id, title=chart.title, alt_text=chart.alt_text)
        return Pictured(image=image, left_out=chart.left_out)
