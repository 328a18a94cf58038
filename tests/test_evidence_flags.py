"""The panel flags a golden signal that moved by 2x or more since an hour or a day ago, up or down; for an SLO
signal it is the error share that is compared (99.9% to 95% success is 50 times the errors)."""

from __future__ import annotations

from bot.models.evidence import Reading, SignalGroup, SignalReading
from bot.render.evidence import signal_line


def reading(name: str, now: float | None, hour: float | None, day: float | None, **kw: object) -> SignalReading:
    return SignalReading.model_validate(
        {
            "name": name,
            "group": kw.pop("group", SignalGroup.TRAFFIC),
            "unit": kw.pop("unit", "/s"),
            "query": "q",
            "now": Reading(value=now),
            "hour_ago": Reading(value=hour),
            "day_ago": Reading(value=day),
            **kw,
        }
    )


def test_a_signal_that_moved_2x_is_flagged_against_1h_and_1d() -> None:
    success = reading("Success rate", 0.95, 0.999, 0.95, group=SignalGroup.AVAILABILITY, unit="ratio", slo=0.999)
    line = signal_line(success)
    assert ":small_red_triangle: errors 50x vs 1 h ago" in line
    assert "vs 1 d ago" not in line, "the same as a day ago: not flagged"

    traffic = signal_line(reading("Request rate", 30, 20, 10))
    assert "vs 1 h ago" not in traffic, "1.5x is within the usual swing"
    assert ":small_red_triangle: 3x vs 1 d ago" in traffic

    dropped = signal_line(reading("Token rate", 100, 1000, 100))
    assert ":small_red_triangle_down: 10x lower vs 1 h ago" in dropped

    errors = signal_line(reading("5xx rate", 2.5, 0, 0))
    assert ":small_red_triangle: up from 0 vs 1 h ago, :small_red_triangle: up from 0 vs 1 d ago" in errors
    assert "down to 0 vs 1 h ago" in signal_line(reading("5xx rate", 0, 4, None))

    assert "vs" not in signal_line(reading("Request rate", 30, None, None)), "no data then: nothing to compare"
    assert "vs" not in signal_line(reading("Request rate", None, 30, 30))
