"""The evidence panel against a real Prometheus scraping an exporter the test sets: availability and burn rate by
real PromQL, a layer past its threshold, a query Prometheus refuses, Prometheus down, and templates whose scope
labels the incident lacks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.adapters.prometheus import PrometheusSource
from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ConfigError, MetricsError
from bot.core.evidence import EvidenceGathering
from bot.core.evidence_config import EvidenceConfig, LayerCheck, Signal, fill
from bot.models import Actor, EvidenceShared, Incident
from bot.models.evidence import (
    Direction,
    Evidence,
    Health,
    Layer,
    LayerReading,
    Reading,
    SignalGroup,
    SignalReading,
)
from bot.render.blocks import MESSAGE_TEXT_BUDGET
from bot.render.evidence import EVIDENCE_ACTION, evidence_post
from bot.root.checks import prometheus_check
from tests.conftest import free_port, make_settings, repo_root
from tests.harness import Harness, running
from tests.prom_proc import Exporter, Prometheus
from tests.slack_standin import SlackStandIn

SCOPE = {"service": "checkout", "namespace": "serving"}
"""No `model`: the vLLM and Triton templates are left out with a note."""


async def declared_with_scope(bot: Harness, scope: dict[str, str]) -> Incident:
    await bot.run("declare sev2 Checkout errors")
    (incident,) = await bot.fb.service.list_open()
    saved = await bot.fb.store.save(incident.model_copy(update={"scope": scope}), [], "test:scope")
    return saved


def panel_text(message: dict[str, Any]) -> str:
    texts = []
    for block in message.get("blocks", []):
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [e.get("text", "") for e in block.get("elements", [])]
    return "\n".join(texts)


def evidence_posts(bot: Harness, channel: str) -> list[str]:
    return [panel_text(m) for m in bot.slack.channels[channel].messages if "Evidence for" in m.get("text", "")]


async def test_the_panel_shows_real_promql_availability_burn_and_a_suspect_gpu_layer(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus
) -> None:
    prom_exporter.grow("http_requests_total", 95, {"service": "checkout", "code": "200"})
    prom_exporter.grow("http_requests_total", 5, {"service": "checkout", "code": "500"})
    prom_exporter.grow("http_requests_total", 50, {"service": "search", "code": "500"})  # another service's errors
    prom_exporter.set("DCGM_FI_DEV_GPU_UTIL", 99, {"namespace": "serving", "gpu": "0"})
    prom_exporter.set("DCGM_FI_DEV_GPU_UTIL", 97, {"namespace": "serving", "gpu": "1"})
    prom_exporter.set("kube_pod_status_phase", 0, {"namespace": "serving", "phase": "Pending"})
    await prom_exporter.scraped(within=15)
    await prom_exporter.scraped(within=5)  # rate() needs two samples
    await prom_exporter.scraped(within=5)
    settings = make_settings(slack, redis_url, prometheus_url=prometheus.url)
    assert await prometheus_check(settings, IncidentConfig()) == ("prometheus", True, f"({prometheus.url})")
    async with running(settings, slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        assert "Evidence posted in" in bot.last_reply()

        (panel,) = evidence_posts(bot, incident.channel_id)
        assert "Suspect layers:* app, gpu" in panel  # 5% of checkout's requests fail, its GPUs are at 98%
        assert "*Success rate* 95.0" in panel or "*Success rate* 94.9" in panel, panel
        assert "burn rate *5" in panel and ":fire:" in panel  # (1 - 0.95) / (1 - 0.999) = 50
        assert ":red_circle: *gpu* · GPU utilization (DCGM): 98.0% (suspect when > 95.0%)" in panel
        assert ":large_green_circle: *scheduler* · Pods pending: 0 (suspect when > 0)" in panel
        assert "1 h ago _no data_" in panel  # Prometheus was not running then
        assert "Left out, as this incident's scope lacks their labels:" in panel
        assert "Token rate (vLLM) (needs model)" in panel
        assert "failed" not in panel, "every default template is PromQL Prometheus accepts"
        events = await bot.fb.service.timeline(incident.id)
        (shared,) = [(e.actor, e.payload) for e in events if isinstance(e.payload, EvidenceShared)]
        actor, facts = shared
        assert actor.user_id == "UALICE" and facts.failed == 0
        assert facts.suspect == ["app: App 5xx share", "gpu: GPU utilization (DCGM)"]
        assert facts.slo["Success rate"] == pytest.approx(0.95, abs=0.005)
        await bot.run("timeline", channel=incident.channel_id)
        assert "Evidence shared: suspect: app: App 5xx share, gpu: GPU utilization (DCGM) · Success rate 9" in str(
            bot.slack.responses[-1]
        )

        evidence = await bot.fb.service.evidence.gather(incident)
        by_name = {s.name: s for s in evidence.signals}
        success = by_name["Success rate"]
        assert success.now.value == pytest.approx(0.95, abs=0.005)
        assert success.burn_rate == pytest.approx(50, rel=0.1)
        # rate() over [5m] with seconds of data is Prometheus's extrapolation, but the share is exact: only
        # checkout's requests count, not the other service's errors.
        errors, requests = by_name["5xx rate"].now.value, by_name["Request rate"].now.value
        assert errors is not None and requests is not None
        assert errors / requests == pytest.approx(0.05, abs=0.005)
        assert "Model errors (Triton)" not in by_name
        assert ("Model errors (Triton)", ("model",)) in [(s.name, s.missing) for s in evidence.skipped]
        assert not evidence.failed

        # A query Prometheus refuses fails on its own; the rest of the panel still shows.
        source = bot.fb.prometheus
        assert source is not None
        now = datetime.now(UTC)
        # prometheus-api-client rounds a range's start and end to whole seconds, hence the second's slack.
        (gpus,) = await source.range(
            'avg(DCGM_FI_DEV_GPU_UTIL{namespace="serving"})', now - timedelta(seconds=30), now, timedelta(seconds=1)
        )
        assert (
            gpus.points and {v for _, v in gpus.points} == {98.0} and gpus.points[-1][0] <= now + timedelta(seconds=1)
        )
        custom = EvidenceConfig(
            signals=(
                Signal(
                    name="Broken",
                    group=SignalGroup.TRAFFIC,
                    query='sum(rate(http_requests_total{service="{service}"}[5m])',
                ),
                Signal(
                    name="Requests",
                    group=SignalGroup.TRAFFIC,
                    query='sum(rate(http_requests_total{service="{service}"}[5s]))',
                    unit="/s",
                ),
                Signal(name="Per pool", group=SignalGroup.TRAFFIC, query='sum(up{pool="{pool}"})'),
            ),
            checks=(
                LayerCheck(
                    name="GPU idle",
                    layer=Layer.GPU,
                    query='min(DCGM_FI_DEV_GPU_UTIL{namespace="{namespace}"})',
                    threshold=10,
                    bad=Direction.BELOW,
                ),
                LayerCheck(name="Nothing", layer=Layer.STORAGE, query="sum(absent_metric_for_tests)", threshold=1),
            ),
        )
        mixed = await EvidenceGathering(custom, source, bot.fb.store, bot.fb.service.evidence.chat, bot.clock).gather(
            incident
        )
        broken, counted = mixed.signals
        assert broken.now.error is not None and "Prometheus refused it (400)" in broken.now.error
        assert "parse error" in broken.now.error
        assert counted.now.error is None and counted.now.value and counted.now.value > 0
        assert [(s.name, s.missing) for s in mixed.skipped] == [("Per pool", ("pool",))]
        idle, nothing = mixed.layers
        assert (idle.health, idle.reading.value) == (Health.HEALTHY, 97)
        assert (nothing.health, nothing.reading.error) == (Health.UNKNOWN, None)
        assert [name for name, _, _ in mixed.failed] == ["Broken (now)", "Broken (1 h ago)", "Broken (1 d ago)"]


async def test_prometheus_down_the_panel_says_which_queries_failed_and_why(slack: SlackStandIn, redis_url: str) -> None:
    settings = make_settings(slack, redis_url, prometheus_url=f"http://127.0.0.1:{free_port()}")
    name, ok, why = await prometheus_check(settings, IncidentConfig())
    assert (name, ok) == ("prometheus", False) and why.endswith("unreachable (Connection refused)"), why
    async with running(settings, slack) as bot:
        incident = await declared_with_scope(bot, SCOPE)
        assert incident.channel_id
        await bot.run("evidence", channel=incident.channel_id)
        assert "queries failed" in bot.last_reply()
        (panel,) = evidence_posts(bot, incident.channel_id)
        assert "queries failed*" in panel
        assert "unreachable (Connection refused)" in panel
        assert "They were: Success rate (now), Success rate (1 h ago)" in panel
        assert "*Success rate* _query failed_" in panel
        assert ":white_circle: *gpu* · GPU utilization (DCGM): _query failed_" in panel
        assert "(needs model)" in panel, "what was left out is still said"

        # The summary's Evidence button posts the same panel in the channel.
        assert incident.summary_ts
        summary = bot.slack.channels[incident.channel_id].messages[0]
        assert [b["action_id"] for b in summary["blocks"][-1]["elements"]][-1] == EVIDENCE_ACTION
        click = {
            "channel": {"id": incident.channel_id},
            "container": {"type": "message", "message_ts": incident.summary_ts, "channel_id": incident.channel_id},
            "message": {"ts": incident.summary_ts},
            "trigger_id": "trig-evidence",
            "actions": [
                {"type": "button", "action_id": EVIDENCE_ACTION, "value": str(incident.id), "action_ts": "1.0"}
            ],
        }
        status, _ = await bot.interaction(
            "block_actions", user="UBOB", response_url=bot.slack.response_url("evidence"), **click
        )
        assert status == 200
        await bot.settle()
        assert len(evidence_posts(bot, incident.channel_id)) == 2
        assert f"Evidence posted in <#{incident.channel_id}>" in bot.last_reply()


async def test_a_prometheus_that_does_not_answer_fails_each_query_after_the_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_get("/api/v1/query", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    source = PrometheusSource(f"http://127.0.0.1:{runner.addresses[0][1]}", timeout_seconds=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(MetricsError) as failed:
            await source.instant("up")
        assert time.monotonic() - started < 1
        assert failed.value.reason == "no answer within 0.3 s" and failed.value.query == "up"
        assert str(failed.value) == "`up`: no answer within 0.3 s"
    finally:
        source.close()
        await runner.cleanup()


async def test_without_prometheus_evidence_says_it_is_not_configured(bot: Harness) -> None:
    await bot.run("declare sev3 No metrics here")
    (incident,) = await bot.fb.service.list_open()
    await bot.run("evidence", channel=incident.channel_id)
    assert "set FIREBREAK_PROMETHEUS_URL" in bot.last_reply()


def test_scope_values_are_escaped_and_missing_labels_named() -> None:
    template = 'sum(x{service="{service}",pod=~"{pod}.*"}) / sum(y{model="{model}"})'
    assert fill(template, {"service": 'a"}) or vector(1', "pod": "api.v1"}) == ("model",)
    query = fill(template, {"service": 'a"}) or vector(1', "pod": "api.v1", "model": "m\\1"})
    assert query == 'sum(x{service="a\\"}) or vector(1",pod=~"api\\\\.v1.*"}) / sum(y{model="m\\\\1"})'


def test_evidence_config_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.yaml"
    path.write_text(
        "evidence:\n  timeout_seconds: 3\n  signals:\n"
        "    - {name: Success, group: availability, query: 'avg(ok{service=\"{service}\"})', unit: ratio, slo: 0.99}\n"
        "  checks:\n"
        "    - {name: Ready, layer: app, query: 'min(ready)', threshold: 1, bad: below}\n"
    )
    config = load_config(path).evidence
    assert config.timeout_seconds == 3 and config.signals[0].slo == 0.99
    assert config.checks[0].bad is Direction.BELOW
    path.write_text("evidence:\n  checks:\n    - {name: X, layer: kettle, query: 'up', threshold: 1}\n")
    with pytest.raises(ConfigError, match=r"evidence\.checks\.0\.layer"):
        load_config(path)


def test_the_example_config_documents_a_valid_evidence_section() -> None:
    text = (repo_root() / "deploy" / "firebreak.example.yaml").read_text()
    block = text[text.index("# evidence:") :].split("\n\n")[0].splitlines()  # up to the next section
    raw = yaml.safe_load("\n".join(line.removeprefix("#")[1:] for line in block))
    config = EvidenceConfig.model_validate(raw["evidence"])
    assert config.signals[0].slo == 0.999 and config.checks[0].layer is Layer.GPU


def test_a_panel_of_every_default_query_failing_differently_fits_one_message() -> None:
    config = EvidenceConfig()
    scope = {"service": "s", "namespace": "n", "model": "m"}

    def failed(n: int) -> Reading:
        return Reading(error=f"Prometheus refused it (422): reason number {n} " + "x" * 300)

    signals = tuple(
        SignalReading(
            name=s.name,
            group=s.group,
            unit=s.unit,
            query=s.query * 3,
            now=failed(i),
            hour_ago=failed(i + 100),
            day_ago=failed(i + 200),
            slo=s.slo,
        )
        for i, s in enumerate(config.signals)
    )
    layers = tuple(
        LayerReading(
            name=c.name,
            layer=c.layer,
            unit=c.unit,
            query=c.query * 3,
            threshold=c.threshold,
            bad=c.bad,
            reading=failed(i + 300),
            health=Health.UNKNOWN,
        )
        for i, c in enumerate(config.checks)
    )
    evidence = Evidence(at=datetime.now(UTC), scope=scope, signals=signals, layers=layers)
    incident = Incident(id=7, title="t", severity=2, declared_by=Actor.user("UALICE"), declared_at=datetime.now(UTC))
    text, blocks = evidence_post(incident, evidence)
    assert text.endswith(f"{len(evidence.failed)} queries failed")
    assert len(blocks) <= 50
    shown = sum(
        len(b.get("text", {}).get("text", "")) + sum(len(e.get("text", "")) for e in b.get("elements", []))
        for b in blocks
    )
    assert shown < MESSAGE_TEXT_BUDGET
    assert any("more reasons" in str(b) for b in blocks), "what does not fit is counted"
    assert f"{len(evidence.failed)} queries failed" in str(blocks)
