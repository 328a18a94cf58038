"""A Chart drawn as a PNG with matplotlib's Agg canvas: no display, no pyplot state shared between threads.
Blocking CPU work: bot/adapters/chart_png.py runs it in a worker thread under a timeout."""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from bot.models.chart import Chart, Panel
from bot.render.evidence import number

WIDTH_INCHES = 9.0
PANEL_INCHES = 2.2
DPI = 100
MARKER_COLOURS = {"impact": "tab:red", "declared": "tab:orange", "recovered": "tab:green", "mitigation": "tab:blue"}


def plain(text: str) -> str:
    """Text matplotlib shows as written: a `$` would start mathtext."""
    return text.replace("$", r"\$")


def day(at: datetime) -> float:
    """matplotlib's date number: days since its default epoch, 1970-01-01 UTC."""
    return at.timestamp() / 86400


def tick(value: float, unit: str) -> str:
    """A tick label in the panel's unit (ratios as %, seconds as ms below one), with the precision ticks need: a
    fine axis (99.99% to 100%, 0.1 to 0.3 ms) still reads as distinct labels."""
    if unit == "ratio":
        return f"{value * 100:.5g}%"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "%":
        return f"{value:.3g}%"
    return plain(html.unescape(number(value, unit)))  # number() escapes for mrkdwn; a unit may hold a `$`


def unit_formatter(unit: str) -> FuncFormatter:
    return FuncFormatter(lambda value, _pos: tick(float(value), unit))


def _panel(ax: Axes, panel: Panel, chart: Chart) -> None:
    several = len(panel.lines) > 1
    for line in panel.lines:
        label = ", ".join(f"{k}={v}" for k, v in sorted(line.labels.items())) if several else None
        ax.plot(
            [day(t) for t, _ in line.points],
            [v for _, v in line.points],
            linewidth=1.4,
            marker="o" if len(line.points) < 3 else None,  # a point or two would otherwise not show
            label=plain(label) if label else None,
        )
    if panel.slo is not None:
        target = f"SLO {number(panel.slo, 'ratio')}"
        ax.axhline(panel.slo, linestyle="--", linewidth=1, color="tab:purple", label=target)
        low, high = ax.get_ylim()
        pad = (max(high, panel.slo) - min(low, panel.slo)) * 0.08 or 0.001
        ax.set_ylim(min(low, panel.slo - pad), max(high, panel.slo + pad))  # the target always in view
    for marker in chart.markers:
        ax.axvline(day(marker.at), linestyle=":", linewidth=1.3, color=MARKER_COLOURS.get(marker.kind, "tab:gray"))
    ax.set_title(plain(panel.name), loc="left", fontsize=10)
    ax.yaxis.set_major_formatter(unit_formatter(panel.unit))
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7, loc="best")  # where it hides the least of the lines


def draw(chart: Chart) -> bytes:
    """One subplot per panel, sharing the incident's window on a UTC time axis."""
    figure = Figure(figsize=(WIDTH_INCHES, 0.9 + PANEL_INCHES * len(chart.panels)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(chart.panels), 1, sharex=True, squeeze=False)[:, 0]
    figure.suptitle(plain(chart.title), fontsize=11)
    for ax, panel in zip(axes, chart.panels, strict=True):
        _panel(ax, panel, chart)
    if chart.markers:  # the incident's moments, once, under the plots where they hide nothing
        keys = [
            Line2D(
                [], [], linestyle=":", linewidth=1.3, color=MARKER_COLOURS.get(m.kind, "tab:gray"), label=plain(m.label)
            )
            for m in chart.markers
        ]
        figure.legend(handles=keys, loc="outside lower center", ncols=min(len(keys), 4), fontsize=8, frameon=False)
    bottom = axes[-1]
    bottom.set_xlim(day(chart.start), day(chart.end))
    bottom.xaxis.set_major_locator(AutoDateLocator(tz=UTC))  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    bottom.set_xlabel("UTC")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
