"""The evidence panel's chart as facts: the key signals over the incident's window, with its moments marked; the
chat adapter draws and uploads it, the panel shows the image or says why there is none."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Line(BaseModel):
    """One series of a range query: its labels and its points (NaN, no data, left out)."""

    model_config = ConfigDict(frozen=True)

    labels: dict[str, str] = {}
    points: tuple[tuple[datetime, float], ...]


class Panel(BaseModel):
    """One signal's plot."""

    model_config = ConfigDict(frozen=True)

    name: str
    unit: str = ""
    slo: float | None = None
    """The SLO target, drawn as a dashed line, for a signal that has one."""
    lines: tuple[Line, ...]


class Marker(BaseModel):
    """A moment of the incident, drawn as a vertical line on every panel."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    label: str
    kind: str = ""
    """impact, declared, recovered or mitigation: how it is drawn."""


class LeftOut(BaseModel):
    """A signal the chart wanted but could not plot, and why (its query failed, no data, missing scope labels)."""

    model_config = ConfigDict(frozen=True)

    name: str
    reason: str


class Chart(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    start: datetime
    end: datetime
    step_seconds: float
    panels: tuple[Panel, ...]
    markers: tuple[Marker, ...] = ()
    left_out: tuple[LeftOut, ...] = ()

    @property
    def alt_text(self) -> str:
        """What the image shows, for screen readers (Slack's alt text: at most 1,000 characters at upload)."""
        names = ", ".join(p.name for p in self.panels)
        span = f"{self.start:%H:%M} to {self.end:%H:%M} UTC"
        return f"{self.title}: {names} from {span}"[:1000]


class ChartImage(BaseModel):
    """A chart uploaded to chat, kept private to the bot and shown by its file id in the panel."""

    model_config = ConfigDict(frozen=True)

    file_id: str
    title: str
    alt_text: str
