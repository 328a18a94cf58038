"""Verified recovery against a real Prometheus scraping an exporter the test sets: errors above the SLO make resolve
ask (and Resolve anyway records the override); errors gone for the whole window make verify record the recovery;
Prometheus down makes verify name the failed query and resolve ask."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.evidence_config import Signal
from bot.core.ports import Series
from bot.core.recovery import judge
from bot.models import Incident, Resolved, Verified
from bot.models.evidence import SignalGroup
from bot.render.mitigations import RESOLVE_ANYWAY_ACTION
from bot.render.mrkdwn import ago
from tests.conftest import free_port, make_settings
from tests.harness import Harness, running
from tests.prom_proc import Exporter, Prometheus
from tests.slack_standin import SlackStandIn

SCOPE = {"service": "checkout", "namespace": "serving"}
ERRORS = {"service": "checkout", "code": "500"}
OK = {"service": "checkout", "code": "200"}
# Short windows so the test runs in seconds: rate over 2 s of 1 s scrapes; recovery over the last 3 s.
SUCCESS_RATE_SLO = """
evidence:
  recovery_window_minutes: 0.05
  recovery_step_seconds: 0.5
  timeout_seconds: 2
  signals:
    - name: Success rate
      group: availability
      unit: ratio
      slo: 0.99
      query: >-
        sum(rate(http_requests_total{service="{service}",code!~"5.."}[2s]))
        / sum(rate(http_requests_total{service="{service}"}[2s]))
"""
CONFIG = (
    SUCCESS_RATE_SLO
    + """    - name: Request rate
      group: traffic
      unit: /s
      query: 'sum(rate(http_requests_total{service="{service}"}[2s]))'
  checks:
    - name: Pods pending
      layer: scheduler
      query: 'sum(kube_pod_status_phase{namespace="{namespace}",phase="Pending"})'
      threshold: 0
"""
)


async def declared(bot: Harness, title: str) -> Incident:
    await bot.run(f"declare sev2 {title}")
    (incident,) = [i for i in await bot.fb.service.list_open() if i.title == title]
    return await bot.fb.store.save(incident.model_copy(update={"scope": SCOPE}), [], f"test:scope:{incident.id}")


async def command(bot: Harness, text: str, incident: Incident) -> dict[str, Any]:
    bot.clock.now = datetime.now(UTC)  # the check asks Prometheus about the real last minutes
    await bot.run(text, channel=incident.channel_id or "")
    reply: dict[str, Any] = bot.slack.responses[-1]
    return reply


async def resolve_anyway(bot: Harness, incident: Incident, prompt: dict[str, Any]) -> str:
    (button,) = [
        e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"] if "anyway" in str(e["text"])
    ]
    assert button["action_id"] == RESOLVE_ANYWAY_ACTION
    bot.clock.now = datetime.now(UTC)
    action = {"type": "button", "action_id": RESOLVE_ANYWAY_ACTION, "value": button["value"], "action_ts": "1.0"}
    status, _ = await bot.interaction(
        "block_actions",
        user="UBOB",
        response_url=bot.slack.response_url(f"anyway-{incident.id}"),
        channel={"id": incident.channel_id},
        container={"type": "message", "message_ts": "1.0", "channel_id": incident.channel_id},
        message={"ts": "1.0", "blocks": prompt["blocks"]},
        trigger_id="trig-anyway",
        actions=[action],
    )
    assert status == 200
    await bot.settle()
    return bot.last_reply()


async def test_resolve_asks_until_errors_are_gone_for_the_window_then_verify_records_recovery(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus, tmp_path: Path
) -> None:
    (tmp_path / "firebreak.yaml").write_text(CONFIG)
    prom_exporter.grow("http_requests_total", 90, OK)
    prom_exporter.grow("http_requests_total", 10, ERRORS)
    prom_exporter.set("kube_pod_status_phase", 0, {"namespace": "serving", "phase": "Pending"})
    await prom_exporter.scraped(within=15)
    for _ in range(3):  # rate() over 2 s needs two samples in it
        await prom_exporter.scraped(within=5)
    settings = make_settings(slack, redis_url, prometheus_url=prometheus.url, config_file=tmp_path / "firebreak.yaml")
    async with running(settings, slack) as bot:
        first = await declared(bot, "Checkout errors")
        second = await declared(bot, "Checkout errors again")

        # 10% of requests fail against a 99% SLO: resolve asks, naming the signal and its worst value.
        prompt = await command(bot, "resolve fixed it", first)
        assert "has not verifiably recovered" in prompt["text"], prompt
        shown = json.dumps(prompt["blocks"])
        assert "*Success rate* worst 9" in shown and "SLO 99.00%" in shown, shown
        assert "Pods pending" not in shown, "a healthy layer is not listed"
        assert (await bot.fb.service.get(first.id)).is_open, "nothing is resolved before the person confirms"

        # Resolve anyway: resolved, the override in the timeline and in the channel.
        assert "resolved; left in force: none; 1 not verified healthy" in await resolve_anyway(bot, first, prompt)
        after = await bot.fb.service.get(first.id)
        assert not after.is_open and after.recovered_at is None
        (resolved,) = [e.payload for e in await bot.fb.service.timeline(first.id) if isinstance(e.payload, Resolved)]
        assert resolved.summary == "fixed it"
        (override,) = resolved.overridden
        assert override.startswith("not verified: Success rate 0.9") and "(SLO 0.99)" in override, override
        channel = [m.get("text", "") for m in bot.slack.channels[first.channel_id or ""].messages]
        assert any("Resolved anyway, over: not verified: Success rate" in t for t in channel), channel

        # verify says the same, and records nothing.
        reply = await command(bot, "verify", second)
        assert "has not verifiably recovered" in reply["text"]
        assert (await bot.fb.service.get(second.id)).recovered_at is None

        # The errors stop. Once the whole window is clean, verify says recovered and records it, once.
        prom_exporter.grow("http_requests_total", 0, ERRORS)
        for _ in range(7):  # 2 s for the rate to forget the errors, then the 3 s window, with a scrape to spare
            await prom_exporter.scraped(within=5)
        reply = await command(bot, "verify", second)
        assert "has recovered" in reply["text"], reply
        assert "Verified recovery recorded at" in json.dumps(reply["blocks"])
        recovered = await bot.fb.service.get(second.id)
        took, at = recovered.time_to_recover, recovered.recovered_at
        assert took is not None and at is not None and took == at - recovered.declared_at  # no alert: no impact start
        assert f"{ago(took)} after it was declared." in json.dumps(reply["blocks"])
        assert recovered.recovered_at == bot.clock.now and recovered.is_open
        await command(bot, "verify", second)
        assert (await bot.fb.service.get(second.id)).recovered_at == recovered.recovered_at, "the first one counts"
        _, metrics = await bot.get("/metrics")
        assert 'firebreak_time_to_recover_seconds_count{severity="2"} 1.0' in metrics, "counted once"
        events = await bot.fb.service.timeline(second.id)
        (verified,) = [(e.actor, e.payload) for e in events if isinstance(e.payload, Verified)]
        assert verified[0].user_id == "UALICE"
        assert verified[1].window_seconds == 3 and verified[1].slo["Success rate"] == 1 and verified[1].layers == 1

        # Recovered: resolve goes straight through, with no prompt and no override.
        reply = await command(bot, "resolve", second)
        assert "resolved" in reply["text"] and "anyway" not in json.dumps(reply)
        done = await bot.fb.service.get(second.id)
        assert not done.is_open and done.recovered_at == recovered.recovered_at
        await bot.run("timeline", channel=second.channel_id or "")
        assert "Recovery verified over 0.05 min: Success rate 100.00% at worst; 1 layer check(s)" in str(
            bot.slack.responses[-1]
        )


async def test_prometheus_down_verify_names_the_failed_query_and_resolve_asks(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "firebreak.yaml").write_text(CONFIG)
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(slack, redis_url, prometheus_url=url, config_file=tmp_path / "firebreak.yaml")
    async with running(settings, slack) as bot:
        incident = await declared(bot, "Checkout errors")
        reply = await command(bot, "verify", incident)
        assert "has not verifiably recovered: 2 not healthy" in reply["text"], reply
        shown = json.dumps(reply["blocks"])
        assert '*Success rate* unknown `sum(rate(http_requests_total{service=\\"checkout\\"' in shown, shown
        assert f"{url} unreachable (Connection refused)" in shown
        assert "*scheduler* \\u00b7 *Pods pending* unknown" in shown, "a layer whose query failed is unknown too"
        prompt = await command(bot, "resolve", incident)
        assert "has not verifiably recovered" in prompt["text"] and "Resolve anyway" in json.dumps(prompt["blocks"])
        assert (await bot.fb.service.get(incident.id)).is_open


async def test_without_prometheus_or_an_slo_signal_resolve_says_nothing_new(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    async with running(make_settings(slack, redis_url), slack) as bot:
        incident = await declared(bot, "No metrics here")
        reply = await command(bot, "verify", incident)
        assert "set FIREBREAK_PROMETHEUS_URL" in reply["text"]
        reply = await command(bot, "resolve", incident)
        assert reply["text"] == f":white_check_mark: {incident.ref} resolved."
    # Prometheus configured (down, even), but no SLO signal fits the scope: resolve never asks it.
    (tmp_path / "firebreak.yaml").write_text(CONFIG.replace("{service}", "{pool}"))
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(slack, redis_url, prometheus_url=url, config_file=tmp_path / "firebreak.yaml")
    async with running(settings, slack) as bot:
        incident = await declared(bot, "No SLO for this scope")
        reply = await command(bot, "verify", incident)
        assert "No SLO signal applies" in reply["text"]
        reply = await command(bot, "resolve", incident)
        assert reply["text"] == f":white_check_mark: {incident.ref} resolved."


def test_a_signal_seen_for_part_of_the_window_or_only_as_nan_is_not_verified() -> None:
    signal = Signal(name="Success", group=SignalGroup.AVAILABILITY, query="x", unit="ratio", slo=0.99)
    end = datetime.now(UTC)
    start, step = end - timedelta(minutes=10), timedelta(seconds=30)

    def series(first: datetime, value: float = 1.0) -> list[Series]:
        points = [(first + step * n, value) for n in range(int((end - first) / step) + 1)]
        return [Series(labels={}, points=tuple(points))]

    assert judge(signal, series(start), start, end, step) == (1.0, None)
    worst, unmet = judge(signal, series(end - timedelta(minutes=2)), start, end, step)
    assert worst == 1.0 and unmet is not None and unmet.reason is not None
    assert unmet.reason.startswith("met it, but data covers only the last 120 s of the 600 s")
    _, unmet = judge(signal, series(start, math.nan), start, end, step)
    assert unmet is not None and unmet.reason == "no data over the window"
    noisy = [*series(start), Series(labels={"pod": "b"}, points=((end, 0.98), (end - step, math.nan)))]
    worst, unmet = judge(signal, noisy, start, end, step)
    assert worst == 0.98 and unmet is not None and unmet.value == 0.98 and unmet.reason is None


LATENCY_CONFIG = (
    SUCCESS_RATE_SLO
    + """    - name: Requests under 300 ms
      group: latency
      unit: ratio
      slo: 0.95
      query: >-
        sum(rate(http_request_duration_seconds_bucket{service="{service}",le="0.3"}[2s]))
        / sum(rate(http_request_duration_seconds_bucket{service="{service}",le="+Inf"}[2s]))
  checks: []
"""
)


async def test_a_latency_slo_is_checked_after_availability_and_holds_resolve_until_requests_are_fast(
    slack: SlackStandIn, redis_url: str, prom_exporter: Exporter, prometheus: Prometheus, tmp_path: Path
) -> None:
    """A latency SLO the usual way: the share of requests faster than a threshold, from the histogram's buckets.
    No request fails, but half are slow: recovery is not verified, and the latency SLO says why."""
    (tmp_path / "firebreak.yaml").write_text(LATENCY_CONFIG)
    fast, every = {"service": "checkout", "le": "0.3"}, {"service": "checkout", "le": "+Inf"}
    prom_exporter.grow("http_requests_total", 100, OK)
    prom_exporter.grow("http_request_duration_seconds_bucket", 50, fast)
    prom_exporter.grow("http_request_duration_seconds_bucket", 100, every)
    await prom_exporter.scraped(within=15)
    for _ in range(3):
        await prom_exporter.scraped(within=5)
    settings = make_settings(slack, redis_url, prometheus_url=prometheus.url, config_file=tmp_path / "firebreak.yaml")
    async with running(settings, slack) as bot:
        incident = await declared(bot, "Checkout slow")
        reply = await command(bot, "verify", incident)
        assert "has not verifiably recovered: 1 not healthy" in reply["text"], reply
        shown = json.dumps(reply["blocks"])
        assert "*Requests under 300 ms* worst 50" in shown and "SLO 95.00%" in shown, shown
        assert "Checked Success rate, Requests under 300 ms over 3 s" in shown, "user-facing, availability first"

        prom_exporter.grow("http_request_duration_seconds_bucket", 100, fast)  # every request fast again
        for _ in range(7):
            await prom_exporter.scraped(within=5)
        reply = await command(bot, "verify", incident)
        assert "has recovered" in reply["text"], reply
        (verified,) = [e.payload for e in await bot.fb.service.timeline(incident.id) if isinstance(e.payload, Verified)]
        assert verified.slo == {"Success rate": 1, "Requests under 300 ms": 1}
