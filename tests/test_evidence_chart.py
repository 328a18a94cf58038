"""The evidence panel's chart against a real Prometheus and the Slack stand-in: the key signals over the incident's
window drawn as a PNG, uploaded private to firebreak and shown by file id; and every way it can fail (a range query,
the drawing, the upload, Slack not showing the image yet) still posting the panel, saying why there is no chart."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.adapters.chart_png import PngCharts
from bot.core.config import load_config
from bot.core.errors import ChartError, ConfigError
from bot.core.evidence_chart import chart_signals, markers, window
from bot.core.evidence_config import EvidenceConfig
from bot.core.jobs import Op
from bot.models import Actor, EvidenceShared, Incident, Mitigated, TimelineEvent
from bot.models.chart import Chart, Line, Panel
from tests.conftest import free_port, make_settings
from tests.harness import Harness, running
from tests.prom_proc import Exporter, Prometheus
from tests.slack_standin import SlackStandIn
from tests.test_evidence import SCOPE, declared_with_scope, panel_text

ALICE = Actor.user("UALICE")


def panels(bot: Harness, channel: str) -> list[dict[str, Any]]:
    return [m for m in bot.slack.channels[channel].messages if "Evidence for" in m.get("text", "")]


def images(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message.get("blocks") or [] if b["type"] == "image"]


async def traffic(exporter: Exporter) -> None:
    """checkout answers 95% of its requests; rate() needs two scrapes."""
    exporter.grow("http_requests_total", 95, {"service": "checkout", "code": "200"})
    exporter.grow("http_requests_total", 5, {"service": "checkout", "code": "500"})
    for within in (15, 5, 5):
        await exporter.scraped(within=within)


class Refusing:
    async def png(self, chart: Chart) -> bytes:
        raise ChartError("the canvas caught fire")


async def test_the_panel_shows_a_png_chart_of_the_slo_signal_and_request_rate_uploaded_privately(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus
) -> None:
    await traffic(prom_exporter)
    async with running(make_settings(slack, redis_url, prometheus_url=prometheus.url), slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        (panel,) = panels(bot, incident.channel_id)
        (image,) = images(panel)
        assert set(image["slack_file"]) == {"id"} and "Success rate, Request rate" in image["alt_text"]
        upload = slack.files[image["slack_file"]["id"]]
        assert upload.completed and upload.shared_to == [], "private to firebreak: shared in no channel"
        assert upload.data is not None
        with Image.open(io.BytesIO(upload.data)) as png:
            png.load()  # decodes every byte: a truncated or corrupt file fails here
            assert png.format == "PNG" and png.size == (900, 530), png.size  # 9 in wide; 0.9 + 2 x 2.2 in tall
        (asked,) = slack.calls_to("files.getUploadURLExternal")
        assert asked["filename"] == "inc-1-evidence-" + asked["filename"][15:] and asked["filename"].endswith(".png")
        assert int(asked["length"]) == len(upload.data)
        (completed,) = slack.calls_to("files.completeUploadExternal")
        assert not completed.get("channel_id") and not completed.get("channels")
        text = panel_text(panel)
        assert "*Success rate* 9" in text, "the numbers are all still there"
        assert "The chart leaves out: p99 latency (no data over the window)" in text  # no latency histogram here

        # The facts drawn: the SLO signal with its target, then the request rate, over the window, declared marked.
        charting = bot.fb.service.evidence.charting
        assert charting is not None
        now = datetime.now(UTC)
        chart = await charting.chart(incident, now)
        assert isinstance(chart, Chart)
        assert [(p.name, p.unit, p.slo) for p in chart.panels] == [
            ("Success rate", "ratio", 0.999),
            ("Request rate", "/s", None),
        ]
        (success,) = chart.panels[0].lines
        assert success.points[-1][1] == pytest.approx(0.95, abs=0.005)
        assert [m.label for m in chart.markers] == ["declared"] and chart.end == now
        assert chart.start <= incident.declared_at - timedelta(minutes=29) and chart.step_seconds == 15

        # Drawing fails: the panel still posts, saying why.
        charting.renderer = Refusing()
        await bot.run("evidence", channel=incident.channel_id)
        latest = panels(bot, incident.channel_id)[-1]
        assert not images(latest) and "*Success rate* 9" in panel_text(latest)
        assert "No chart: drawing it failed (the canvas caught fire)." in panel_text(latest)


async def test_range_queries_failing_leave_their_plots_out_and_the_panel_keeps_its_numbers(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus, tmp_path: Path
) -> None:
    await traffic(prom_exporter)
    config = tmp_path / "firebreak.yaml"
    config.write_text(
        "evidence:\n  checks: []\n  chart: [Broken, Requests]\n  signals:\n"
        "    - {name: Broken, group: traffic, query: 'sum(rate(http_requests_total{service=\"{service}\"}[5m])'}\n"
        "    - {name: Requests, group: traffic, unit: /s, "
        "query: 'sum(rate(http_requests_total{service=\"{service}\"}[5m]))'}\n"
    )
    settings = make_settings(slack, redis_url, prometheus_url=prometheus.url, config_file=config)
    async with running(settings, slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        (mixed,) = panels(bot, incident.channel_id)
        assert len(images(mixed)) == 1, "the plot that answered is drawn"
        assert "The chart leaves out: Broken (Prometheus refused it (400)" in panel_text(mixed)

        charting = bot.fb.service.evidence.charting
        assert charting is not None
        charting.config = charting.config.model_copy(update={"chart": ("Broken",)})
        await bot.run("evidence", channel=incident.channel_id)
        none = panels(bot, incident.channel_id)[-1]
        assert not images(none)
        text = panel_text(none)
        assert "No chart: no signal could be plotted (Broken: Prometheus refused it (400)" in text
        assert "parse error" in text and "*Requests* " in text and "_query failed_" in text


async def test_without_prometheus_there_is_no_chart_and_no_upload(slack: SlackStandIn, redis_url: str) -> None:
    # Prometheus down: every range query fails the same way as the panel's own queries.
    settings = make_settings(slack, redis_url, prometheus_url=f"http://127.0.0.1:{free_port()}")
    async with running(settings, slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        (panel,) = panels(bot, incident.channel_id)
        assert not images(panel) and "No chart: no signal could be plotted (Success rate:" in panel_text(panel)
        assert not slack.calls_to("files.getUploadURLExternal")
    async with running(make_settings(slack, redis_url), slack) as bot:  # not configured: unchanged
        await bot.run("evidence", channel=incident.channel_id)
        assert "set FIREBREAK_PROMETHEUS_URL" in bot.last_reply()


@pytest.mark.parametrize(
    ("method", "error", "said"),
    [
        ("files.getUploadURLExternal", "file_uploads_disabled", "Slack refused files.getUploadURLExternal"),
        ("files.getUploadURLExternal", "missing_scope", "firebreak's Slack app lacks the scope"),
        ("files.completeUploadExternal", "file_not_found", "Slack refused files.completeUploadExternal"),
    ],
)
async def test_an_upload_slack_refuses_leaves_the_panel_without_its_image_saying_why(
    slack: SlackStandIn,
    redis_url: str,
    prom_exporter: Exporter,
    prometheus: Prometheus,
    method: str,
    error: str,
    said: str,
) -> None:
    await traffic(prom_exporter)
    slack.fail(method, error)
    async with running(make_settings(slack, redis_url, prometheus_url=prometheus.url), slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        (panel,) = panels(bot, incident.channel_id)
        assert not images(panel)
        assert f"No chart: uploading it failed. {said}" in panel_text(panel) and "*Success rate* 9" in panel_text(panel)
        assert not any(u.shared_to for u in slack.files.values())
        _, metrics = await bot.get("/metrics")
        counted = f'firebreak_slack_api_errors_total{{error="{error}",method="{method}"}} 1.0'
        assert counted in metrics, "a refused upload is counted as every refused call is"


async def test_an_image_slack_refuses_to_show_is_posted_again_then_left_out(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus
) -> None:
    """Slack can answer invalid_blocks to an image block naming a file it is still processing: post again after a
    wait (zero here: nothing is timed), and past the retries post the panel without the image."""
    await traffic(prom_exporter)
    async with running(make_settings(slack, redis_url, prometheus_url=prometheus.url), slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        chat = bot.fb.service.evidence.chat
        chat.image_retry = (0.0,)  # type: ignore[attr-defined]
        is_panel = {"channel": incident.channel_id}
        slack.fail("chat.postMessage", "invalid_blocks")
        await bot.run("evidence", **is_panel)
        assert len(images(panels(bot, incident.channel_id)[-1])) == 1, "the second attempt showed it"
        slack.fail("chat.postMessage", "invalid_blocks", times=2)
        await bot.run("evidence", **is_panel)
        shown = panels(bot, incident.channel_id)
        assert len(shown) == 2 and not images(shown[-1])
        assert "No chart: Slack would not show the uploaded image (invalid_blocks)." in panel_text(shown[-1])


async def test_a_resumed_request_posts_the_panel_once(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus
) -> None:
    """The panel is posted, then the worker dies before recording it: the resumed op finds the panel by its key.
    Its repeated upload only leaves a second file that no channel shows."""
    await traffic(prom_exporter)
    async with running(make_settings(slack, redis_url, prometheus_url=prometheus.url), slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        op = Op.fresh()
        await bot.fb.service.evidence.share(incident, ALICE, op)
        await bot.fb.service.evidence.share(incident, ALICE, Op(op.key, recovering=True))
        (panel,) = panels(bot, incident.channel_id)
        assert len(images(panel)) == 1
        assert len(slack.files) == 2 and not any(u.shared_to for u in slack.files.values())
        events = await bot.fb.service.timeline(incident.id)
        assert len([e for e in events if isinstance(e.payload, EvidenceShared)]) == 1


def test_the_window_reaches_back_from_impact_at_most_a_day_in_at_most_240_points_ending_now() -> None:
    now = datetime(2026, 5, 1, 12, 0, 7, tzinfo=UTC)
    fresh = Incident(id=1, title="t", severity=2, declared_by=ALICE, declared_at=now - timedelta(minutes=5))
    start, end, step = window(fresh, now)
    assert (end, step) == (now, timedelta(seconds=15)) and start == now - timedelta(minutes=35)
    early = fresh.model_copy(update={"impact_started_at": now - timedelta(hours=3)})
    start, _, step = window(early, now)
    assert step == timedelta(seconds=53) and now - start <= timedelta(hours=3, minutes=30)
    assert (now - start).total_seconds() % 53 == 0 and (now - start) // step + 1 <= 240  # points = steps + 1
    old = fresh.model_copy(update={"declared_at": now - timedelta(days=3)})
    start, _, step = window(old, now)
    assert step == timedelta(seconds=362) and timedelta(hours=23, minutes=54) <= now - start <= timedelta(hours=24)
    assert (now - start) // step + 1 == 239


def test_the_chart_marks_the_incident_moments_and_its_mitigation_runs_in_the_window() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    incident = Incident(
        id=1,
        title="t",
        severity=2,
        declared_by=ALICE,
        declared_at=now - timedelta(minutes=20),
        impact_started_at=now - timedelta(minutes=25),
        recovered_at=now - timedelta(minutes=2),
    )
    start, end, _ = window(incident, now)

    def step(minutes: int, number: int, action: str) -> TimelineEvent:
        payload = Mitigated(number=number, playbook="rollback", action=action, text="")
        return TimelineEvent(at=now - timedelta(minutes=minutes), actor=ALICE, payload=payload)

    events = [step(90, 1, "started"), step(10, 2, "requested"), step(9, 2, "started"), step(8, 2, "done")]
    marked = [(m.kind, m.label) for m in markers(incident, start, end, events)]
    assert marked == [
        ("impact", "impact started"),
        ("declared", "declared"),
        ("recovered", "recovered"),
        ("mitigation", "#2 rollback started"),
        ("mitigation", "#2 rollback done"),
    ], "a run before the window and a request are not marked"


def test_the_chart_names_configured_signals(tmp_path: Path) -> None:
    config = EvidenceConfig()
    assert config.chart == () and config.chart_max_panels == 4
    assert [s.name for s in chart_signals(config)] == ["Success rate", "p99 latency", "Request rate"]
    assert [s.name for s in chart_signals(config.model_copy(update={"chart": ("CPU used (cores)",)}))] == [
        "CPU used (cores)"
    ]
    path = tmp_path / "firebreak.yaml"
    path.write_text("evidence:\n  chart: [Success rate, Kettle temperature]\n")
    with pytest.raises(ConfigError, match="Kettle temperature"):
        load_config(path)


def test_matplotlib_is_loaded_only_where_charts_are_drawn() -> None:
    """A firebreak without Prometheus (or a benchmark's process) never pays for matplotlib's import and heap."""
    code = (
        "import sys, bot.root.app, bot.adapters.chart_png as c; assert 'matplotlib' not in sys.modules; "
        "c.PngCharts(); assert 'matplotlib' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603 (our own code, no shell)


async def test_an_unexpected_failure_costs_the_chart_not_the_panel(caplog: pytest.LogCaptureFixture) -> None:
    """A bug anywhere in the chart's path (here the upload answering something unexpected) is logged with its
    traceback and leaves only the chart out; so does a chart that takes too long."""
    from bot.core import evidence_chart
    from bot.core.evidence_chart import Charting

    class Broken:
        async def upload_image(self, *_: Any) -> str:
            raise KeyError("files")

    class Slow:
        async def png(self, _: Any) -> bytes:
            await asyncio.sleep(3600)
            return b""

    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    incident = Incident(id=1, title="t", severity=2, declared_by=ALICE, declared_at=now - timedelta(minutes=5))

    async def no_events() -> list[Any]:
        return []

    charting = Charting(EvidenceConfig(), None, None, None)  # type: ignore[arg-type]

    async def a_chart(*_: Any) -> Any:
        line = Line(points=((now - timedelta(minutes=1), 1.0), (now, 2.0)))
        panel = Panel(name="Request rate", unit="/s", lines=(line,))
        return Chart(title="t", start=now - timedelta(minutes=5), end=now, step_seconds=15, panels=(panel,))

    charting.chart = a_chart  # type: ignore[method-assign,assignment]
    charting.renderer, charting.chat = PngCharts(), Broken()  # type: ignore[assignment]
    pictured = await charting.picture_within(incident, now, no_events)
    assert pictured.image is None and pictured.note is not None and "failed unexpectedly" in pictured.note
    assert "the evidence chart of INC-1 failed" in caplog.text and "KeyError" in caplog.text
    charting.renderer = Slow()
    evidence_chart.CHART_SECONDS, saved = 0.05, evidence_chart.CHART_SECONDS
    try:
        pictured = await charting.picture_within(incident, now, no_events)
    finally:
        evidence_chart.CHART_SECONDS = saved
    assert pictured.note == "No chart: it was not ready within 0.05 s."
