"""The evidence panel as facts: each golden signal now, an hour and a day ago, and each layer's health; and the
recovery check's verdict."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.models.chart import ChartImage, LeftOut


class SignalGroup(StrEnum):
    """The golden signals, in the order the panel shows them (user-facing first)."""

    AVAILABILITY = "availability"
    LATENCY = "latency"
    TRAFFIC = "traffic"
    SATURATION = "saturation"
    CORRECTNESS = "correctness"


class Layer(StrEnum):
    """Where a failure can sit, from the user's request down to what the service depends on."""

    TRAFFIC = "traffic"
    APP = "app"
    MODEL_SERVER = "model-server"
    SCHEDULER = "scheduler"
    NODE = "node"
    GPU = "gpu"
    NETWORK = "network"
    STORAGE = "storage"
    DEPENDENCY = "dependency"


class Direction(StrEnum):
    """Which side of a threshold is bad."""

    ABOVE = "above"
    BELOW = "below"


class Health(StrEnum):
    HEALTHY = "healthy"
    SUSPECT = "suspect"
    UNKNOWN = "unknown"
    """The query failed or returned nothing: no evidence either way."""


class Reading(BaseModel):
    """One query's answer at one instant: a value, no data (value and error both None), or why it failed."""

    model_config = ConfigDict(frozen=True)

    value: float | None = None
    series: int = 0
    """How many series answered; with several, `value` is the worst of them (the largest, or for a check whose
    bad side is below, the smallest)."""
    error: str | None = None


class SignalReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    group: SignalGroup
    unit: str
    query: str
    """The query as sent, scope labels filled in."""
    now: Reading
    hour_ago: Reading
    day_ago: Reading
    slo: float | None = None
    """The target share of good events (0.999), when one is configured."""
    burn_rate: float | None = None
    """How fast the error budget burns now: 1 spends it exactly over the SLO window, 14.4 spends a 30-day
    budget in two days."""


class LayerReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    layer: Layer
    unit: str
    query: str
    threshold: float
    bad: Direction
    reading: Reading
    health: Health


class Skipped(BaseModel):
    """A configured signal or check left out: its template names scope labels this incident lacks."""

    model_config = ConfigDict(frozen=True)

    name: str
    missing: tuple[str, ...]


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    scope: dict[str, str]
    signals: tuple[SignalReading, ...] = ()
    layers: tuple[LayerReading, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    chart: ChartImage | None = None
    """The key signals over the incident's window, as an uploaded image."""
    chart_note: str | None = None
    """Why a chart was wanted and is not shown (the queries failed, drawing or uploading it failed)."""
    chart_left_out: tuple[LeftOut, ...] = ()
    """Signals the chart shows without: each with why."""

    @property
    def failed(self) -> list[tuple[str, str, str]]:
        """(name, query, reason) of every query that failed, each named once."""
        out: list[tuple[str, str, str]] = []
        for s in self.signals:
            for label, r in (("now", s.now), ("1 h ago", s.hour_ago), ("1 d ago", s.day_ago)):
                if r.error is not None:
                    out.append((f"{s.name} ({label})", s.query, r.error))
        out += [(c.name, c.query, c.reading.error) for c in self.layers if c.reading.error is not None]
        return out


class Unmet(BaseModel):
    """Something that kept a recovery check from passing: an SLO signal that missed its target during the window,
    a layer suspect now, or a query whose answer is unknown (it failed, or there was no data)."""

    model_config = ConfigDict(frozen=True)

    name: str
    layer: Layer | None = None
    """None for an SLO signal; the layer for a layer check."""
    unit: str = ""
    value: float | None = None
    """The worst value seen (a signal over the window, a layer now); None when unknown."""
    target: float | None = None
    """The SLO (a signal) or the threshold (a layer)."""
    bad: Direction = Direction.BELOW
    """Which side of the target is bad: below an SLO; for a layer, its check's side."""
    reason: str | None = None
    """Why the answer is unknown: the query's failure, or no data."""
    query: str = ""
    """The query as sent, scope labels filled in."""


class Recovery(BaseModel):
    """Whether an incident's scope has recovered: every SLO signal met its target at every point of the window,
    user-facing signals first, and every layer check is healthy now."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    window_seconds: float
    signals: tuple[str, ...]
    """The SLO signals checked, in the order checked."""
    layers: int = 0
    """How many layer checks were asked."""
    unmet: tuple[Unmet, ...] = ()
    worst: dict[str, float] = {}
    """Each SLO signal's worst value over the window, where it had one."""

    @property
    def recovered(self) -> bool:
        return not self.unmet
