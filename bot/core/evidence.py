"""The evidence panel's facts: each golden signal now, an hour and a day ago, the error budget's burn rate, and
each layer's health, asked of Prometheus concurrently, every query failing on its own."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from datetime import datetime, timedelta

from bot.core.errors import MetricsError, UsageError
from bot.core.evidence_chart import Charting
from bot.core.evidence_config import EvidenceConfig, LayerCheck, Signal, fill
from bot.core.jobs import Op
from bot.core.ports import ChartRenderer, Chat, Clock, IncidentStore, MetricsSource, Sample
from bot.core.publishing import channel_of
from bot.models import Actor, EvidenceShared, Incident, Post, PostKind, TimelineEvent
from bot.models.evidence import Direction, Evidence, Health, LayerReading, Reading, SignalReading, Skipped

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NOT_CONFIGURED = "The evidence panel needs Prometheus: set FIREBREAK_PROMETHEUS_URL and restart firebreak."


def reduce(samples: list[Sample], bad: Direction = Direction.ABOVE) -> Reading:
    """One reading from a query's series: the worst value (NaN, 0/0 in PromQL, counts as no data)."""
    values = [s.value for s in samples if not math.isnan(s.value)]
    if not values:
        return Reading(series=len(samples))
    worst = min(values) if bad is Direction.BELOW else max(values)
    return Reading(value=worst, series=len(samples))


def health(reading: Reading, check: LayerCheck) -> Health:
    if reading.value is None:
        return Health.UNKNOWN
    past = reading.value < check.threshold if check.bad is Direction.BELOW else reading.value > check.threshold
    return Health.SUSPECT if past else Health.HEALTHY


def burn_rate(value: float | None, slo: float | None) -> float | None:
    """(1 - good share) / (1 - target): 1 spends the error budget exactly over the SLO's window."""
    if value is None or slo is None:
        return None
    return max(0.0, 1 - value) / (1 - slo)


def shared(evidence: Evidence) -> EvidenceShared:
    """What the timeline keeps of a panel: the suspect layers, the SLO signals and their burn, the failures."""
    return EvidenceShared(
        suspect=[f"{c.layer.value}: {c.name}" for c in evidence.layers if c.health is Health.SUSPECT],
        slo={s.name: s.now.value for s in evidence.signals if s.slo is not None and s.now.value is not None},
        burn={s.name: s.burn_rate for s in evidence.signals if s.burn_rate is not None},
        failed=len(evidence.failed),
    )


class EvidenceGathering:
    """Asks the metrics source for an incident's evidence; without one, says how to set it up."""

    def __init__(
        self,
        config: EvidenceConfig,
        source: MetricsSource | None,
        store: IncidentStore,
        chat: Chat,
        clock: Clock,
        renderer: ChartRenderer | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.store = store
        self.chat = chat
        self.clock = clock
        self.charting = Charting(config, source, chat, renderer) if source is not None else None

    async def share(self, incident: Incident, actor: Actor, op: Op) -> Evidence:
        """Gather the evidence and post it in the incident channel, where everyone works from the same numbers;
        the timeline keeps what it showed. Keyed by the op: a request resumed after a crash finds the panel it
        posted and records it once."""
        channel = channel_of(incident)
        if self.charting is None:
            raise UsageError(NOT_CONFIGURED)
        # The chart's range queries run alongside the panel's; it is drawn and uploaded (private to firebreak)
        # before the keyed post, so a resumed request at worst leaves an unshared file, never a second panel.
        charting = self.charting

        def timeline() -> Awaitable[list[TimelineEvent]]:
            return self.store.timeline(incident.id)  # the mitigations' runs, marked on the chart

        picture = charting.picture_within(incident, self.clock(), timeline)
        evidence, pictured = await asyncio.gather(self.gather(incident), picture)
        evidence = evidence.model_copy(
            update={"chart": pictured.image, "chart_note": pictured.note, "chart_left_out": pictured.left_out}
        )
        post = Post(kind=PostKind.EVIDENCE, incident=incident, evidence=evidence)
        op.check()
        await self.chat.post(channel, post, key=op.part("evidence"), recover=op.recovering)
        event = TimelineEvent(at=evidence.at, actor=actor, payload=shared(evidence))
        await self.store.append(incident.id, event, op.part("evidence-event"))
        return evidence

    async def gather(self, incident: Incident) -> Evidence:
        if self.source is None:
            raise UsageError(NOT_CONFIGURED)
        source = self.source
        now = self.clock()
        scope = dict(incident.scope)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def ask(query: str, at: datetime, bad: Direction = Direction.ABOVE) -> Reading:
            async with gate:
                try:
                    return reduce(await source.instant(query, at), bad)
                except MetricsError as exc:
                    return Reading(error=exc.reason)

        skipped: list[Skipped] = []
        signals: list[tuple[Signal, str, Awaitable[list[Reading]]]] = []
        for signal in self.config.signals:
            query = fill(signal.query, scope)
            if isinstance(query, tuple):
                skipped.append(Skipped(name=signal.name, missing=query))
                continue
            readings = asyncio.gather(*(ask(query, at) for at in (now, now - HOUR, now - DAY)))
            signals.append((signal, query, readings))
        checks: list[tuple[LayerCheck, str, Awaitable[Reading]]] = []
        for check in self.config.checks:
            query = fill(check.query, scope)
            if isinstance(query, tuple):
                skipped.append(Skipped(name=check.name, missing=query))
                continue
            checks.append((check, query, asyncio.ensure_future(ask(query, now, check.bad))))
        signal_readings = await asyncio.gather(*(r for _, _, r in signals))
        check_readings = await asyncio.gather(*(r for _, _, r in checks))
        return Evidence(
            at=now,
            scope=scope,
            signals=tuple(
                SignalReading(
                    name=s.name,
                    group=s.group,
                    unit=s.unit,
                    query=q,
                    now=current,
                    hour_ago=hour,
                    day_ago=day,
                    slo=s.slo,
                    burn_rate=burn_rate(current.value, s.slo),
                )
                for (s, q, _), (current, hour, day) in zip(signals, signal_readings, strict=True)
            ),
            layers=tuple(
                LayerReading(
                    name=c.name,
                    layer=c.layer,
                    unit=c.unit,
                    query=q,
                    threshold=c.threshold,
                    bad=c.bad,
                    reading=r,
                    health=health(r, c),
                )
                for (c, q, _), r in zip(checks, check_readings, strict=True)
            ),
            skipped=tuple(skipped),
        )
