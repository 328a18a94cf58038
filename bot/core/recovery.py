"""Verified recovery: has the incident's scope met its SLOs for the whole window, and is every layer healthy now?
`/incident verify` asks on demand, and `/incident resolve` asks before it resolves."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from bot.core.changes import Outcome, change_incident
from bot.core.errors import MetricsError, UsageError
from bot.core.evidence import health, reduce
from bot.core.evidence_config import EvidenceConfig, LayerCheck, Signal, fill
from bot.core.jobs import Op
from bot.core.metrics import Metrics
from bot.core.ports import Clock, IncidentStore, MetricsSource, Series
from bot.models import Actor, Incident, TimelineEvent, Verified
from bot.models.evidence import Health, Recovery, SignalGroup, Unmet

NO_SLO = (
    "No SLO signal applies to this incident's scope: give a signal an `slo:` in `evidence.signals` "
    "(and the incident the scope labels its query needs) to verify recovery."
)
USER_FACING = {SignalGroup.AVAILABILITY: 0, SignalGroup.LATENCY: 1}
"""Signals users feel are checked (and named) first; the rest keep their configured order after them."""


def slo_signals(config: EvidenceConfig, scope: dict[str, str]) -> list[tuple[Signal, str]]:
    """The SLO signals whose templates this scope fills, user-facing first."""
    found = [(s, q) for s in config.signals if s.slo is not None and isinstance(q := fill(s.query, scope), str)]
    return sorted(found, key=lambda sq: USER_FACING.get(sq[0].group, len(USER_FACING)))


def judge(
    signal: Signal, series: list[Series], start: datetime, end: datetime, step: timedelta
) -> tuple[float | None, Unmet | None]:
    """(the worst value over the window, what was unmet if anything). Every point must meet the SLO, and the
    points must reach back to the window's start: a signal seen for only part of the window is not verified.
    A NaN point (0/0: no requests at that instant) is no evidence either way and is skipped."""
    assert signal.slo is not None
    unmet = Unmet(name=signal.name, unit=signal.unit, target=signal.slo)
    points = [(t, v) for s in series for t, v in s.points if not math.isnan(v)]
    if not points:
        return None, unmet.model_copy(update={"reason": "no data over the window"})
    worst = min(v for _, v in points)
    first = min(t for t, _ in points)
    if worst < signal.slo:
        return worst, unmet.model_copy(update={"value": worst})
    if first > start + step + timedelta(seconds=1):  # the client rounds the range to whole seconds
        seen = (end - first).total_seconds()
        reason = f"met it, but data covers only the last {seen:.0f} s of the {(end - start).total_seconds():.0f} s"
        return worst, unmet.model_copy(update={"value": worst, "reason": reason})
    return worst, None


class Verifying:
    """Asks the metrics source whether an incident has recovered, and records the first verified recovery."""

    def __init__(
        self,
        config: EvidenceConfig,
        source: MetricsSource | None,
        store: IncidentStore,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.store = store
        self.clock = clock
        self.metrics = metrics

    async def before_resolve(self, incident: Incident) -> Recovery | None:
        """The check resolve runs first; None when there is nothing to check (no Prometheus, no SLO signal for
        the scope, or the incident is resolved already): resolve then goes on as it always did."""
        if self.source is None or not incident.is_open or not slo_signals(self.config, dict(incident.scope)):
            return None
        return await self.verify(incident)

    async def verify(self, incident: Incident) -> Recovery:
        """The SLO signals over the window (each point must meet its target), then each layer now. A query that
        fails is unknown, and unknown is not verified."""
        if self.source is None:
            raise UsageError("Verifying recovery needs Prometheus: set FIREBREAK_PROMETHEUS_URL and restart firebreak.")
        scope = dict(incident.scope)
        signals = slo_signals(self.config, scope)
        if not signals:
            raise UsageError(NO_SLO)
        source = self.source
        now = self.clock()
        window = timedelta(minutes=self.config.recovery_window_minutes)
        step = min(timedelta(seconds=self.config.recovery_step_seconds), window)
        start = now - window
        gate = asyncio.Semaphore(self.config.concurrency)

        async def over_window(signal: Signal, query: str) -> tuple[float | None, Unmet | None]:
            async with gate:
                try:
                    series = await source.range(query, start, now, step)
                except MetricsError as exc:
                    failed = Unmet(
                        name=signal.name, unit=signal.unit, target=signal.slo, reason=exc.reason, query=query
                    )
                    return None, failed
            worst, unmet = judge(signal, series, start, now, step)
            return worst, unmet.model_copy(update={"query": query}) if unmet is not None else None

        async def layer_now(check: LayerCheck, query: str) -> Unmet | None:
            async with gate:
                try:
                    reading = reduce(await source.instant(query, now), check.bad)
                except MetricsError as exc:
                    return Unmet(name=check.name, layer=check.layer, unit=check.unit, reason=exc.reason, query=query)
            if health(reading, check) is Health.SUSPECT:
                return Unmet(
                    name=check.name,
                    layer=check.layer,
                    unit=check.unit,
                    value=reading.value,
                    target=check.threshold,
                    bad=check.bad,
                    query=query,
                )
            return None  # healthy, or no data: a layer without the metric is no evidence of a fault

        checks = [(c, q) for c in self.config.checks if isinstance(q := fill(c.query, scope), str)]
        judged = await asyncio.gather(*(over_window(s, q) for s, q in signals))
        layers = await asyncio.gather(*(layer_now(c, q) for c, q in checks))
        unmet = [u for _, u in judged if u is not None] + [u for u in layers if u is not None]
        return Recovery(
            at=now,
            window_seconds=window.total_seconds(),
            signals=tuple(s.name for s, _ in signals),
            layers=len(checks),
            unmet=tuple(unmet),
            worst={s.name: w for (s, _), (w, _) in zip(signals, judged, strict=True) if w is not None},
        )

    async def record(self, incident: Incident, recovery: Recovery, actor: Actor, op: Op) -> Outcome:
        """The first verified recovery, on the record and in the timeline; later ones change nothing."""
        if not recovery.recovered:
            return Outcome(incident, changed=False)

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            if i.recovered_at is not None:
                return None
            return i.model_copy(update={"recovered_at": recovery.at}), [verified_event(recovery, actor)]

        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        if recorded is not None:
            observe_recovery(self.metrics, after)
        return Outcome(after, changed=recorded is not None)


def observe_recovery(metrics: Metrics | None, incident: Incident) -> None:
    """Count a first verified recovery's time to recover (impact start, else declaration, to recovery)."""
    took = incident.time_to_recover
    if metrics is not None and took is not None:
        metrics.time_to_recover.labels(str(incident.severity)).observe(took.total_seconds())


def verified_event(recovery: Recovery, actor: Actor) -> TimelineEvent:
    payload = Verified(window_seconds=recovery.window_seconds, slo=dict(recovery.worst), layers=recovery.layers)
    return TimelineEvent(at=recovery.at, actor=actor, payload=payload)


def unmet_line(u: Unmet) -> str:
    """One thing not healthy, as plain words for the timeline (the chat wording lives in render)."""
    where = f"{u.layer.value}: " if u.layer is not None else ""
    if u.value is None:
        return f"{where}{u.name} unknown ({u.reason or 'no data'})"
    bound = "SLO" if u.layer is None else "threshold"
    extra = f"; {u.reason}" if u.reason else ""
    return f"{where}{u.name} {u.value:.4g} ({bound} {u.target:.4g}{extra})"
