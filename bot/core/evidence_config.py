"""The evidence panel's configuration: golden-signal and layer-check PromQL templates, filled with scope labels.

A template names the incident's scope labels as `{label}` placeholders, e.g.
`sum(rate(http_requests_total{service="{service}",code=~"5.."}[5m]))`. Each value is escaped as a PromQL
string (and as a regular expression after `=~"` or `!~"`), so a label value can never change the query's shape.
A template naming a label the incident's scope lacks is left out of the panel, with a note saying which.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.models.evidence import Direction, Layer, SignalGroup

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""`{name}`: never valid PromQL on its own (a selector needs a matcher), so it can't be mistaken for one."""
REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def placeholders(template: str) -> tuple[str, ...]:
    """The scope labels a template needs, in order of first use."""
    return tuple(dict.fromkeys(PLACEHOLDER.findall(template)))


def promql_string(value: str) -> str:
    """`value` as the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def fill(template: str, scope: dict[str, str]) -> str | tuple[str, ...]:
    """The query with scope labels filled in, or the labels the scope lacks (nothing is sent then)."""
    missing = tuple(name for name in placeholders(template) if name not in scope)
    if missing:
        return missing

    def value(m: re.Match[str]) -> str:
        raw = scope[m.group(1)]
        if template[max(0, m.start() - 3) : m.start()] in ('=~"', '!~"'):
            raw = REGEX_SPECIAL.sub(r"\\\1", raw)
        return promql_string(raw)

    return PLACEHOLDER.sub(value, template)


class Signal(BaseModel):
    """A golden signal: one number for the incident's scope, shown now, an hour ago and a day ago."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=60)
    group: SignalGroup
    query: str = Field(min_length=1)
    """A PromQL template answering one series (aggregate with sum/avg/max); `{label}` is a scope label."""
    unit: str = ""
    """How the value reads: `ratio` (shown as %), `%`, `s`, `/s`, `bytes`, or any word shown after it."""
    slo: float | None = Field(default=None, gt=0, lt=1)
    """The target share of good events (0.999) for a signal whose value is that share: the panel shows the
    error budget's burn rate, (1 - value) / (1 - slo)."""


class LayerCheck(BaseModel):
    """One layer's health: a query and the threshold past which the layer is suspect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=60)
    layer: Layer
    query: str = Field(min_length=1)
    threshold: float
    bad: Direction = Direction.ABOVE
    """Which side of the threshold is bad: `above` (errors, queue length) or `below` (ready replicas, probes)."""
    unit: str = ""
    saturation: bool = False
    """The check measures saturation (queues, pending pods, utilization, fullness): `/incident guide` reads it,
    with the dependency layer's checks, to answer "is it saturation or a failing dependency?"."""


def _availability(name: str, query: str, unit: str = "ratio", slo: float | None = None) -> Signal:
    return Signal(name=name, group=SignalGroup.AVAILABILITY, query=query, unit=unit, slo=slo)


_HTTP = 'http_requests_total{service="{service}"'
_P = 'histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{service="{service}"}[5m])))'

DEFAULT_SIGNALS: tuple[Signal, ...] = (
    # Availability: the share of requests that succeed (any HTTP server instrumented the usual way), and what
    # model servers count as failures (Triton's nv_inference_*, vLLM's request counters).
    _availability(
        "Success rate",
        f'sum(rate({_HTTP},code!~"5.."}}[5m])) / sum(rate({_HTTP}}}[5m]))',
        slo=0.999,
    ),
    _availability("5xx rate", f'sum(rate({_HTTP},code=~"5.."}}[5m]))', unit="/s"),
    _availability("Model errors (Triton)", 'sum(rate(nv_inference_request_failure{model="{model}"}[5m]))', "/s"),
    _availability(
        "Admission errors (webhooks)",
        'sum(rate(apiserver_admission_webhook_rejection_count{namespace="{namespace}"}[5m]))',
        "/s",
    ),
    # Latency: the request's percentiles, then where model-server time goes (vLLM histograms).
    Signal(name="p50 latency", group=SignalGroup.LATENCY, query=_P.replace("{q}", "0.5"), unit="s"),
    Signal(name="p95 latency", group=SignalGroup.LATENCY, query=_P.replace("{q}", "0.95"), unit="s"),
    Signal(name="p99 latency", group=SignalGroup.LATENCY, query=_P.replace("{q}", "0.99"), unit="s"),
    Signal(
        name="Queue time p95 (vLLM)",
        group=SignalGroup.LATENCY,
        query="histogram_quantile(0.95, sum by (le) "
        '(rate(vllm:request_queue_time_seconds_bucket{model_name="{model}"}[5m])))',
        unit="s",
    ),
    Signal(
        name="Time to first token p95 (vLLM)",
        group=SignalGroup.LATENCY,
        query="histogram_quantile(0.95, sum by (le) "
        '(rate(vllm:time_to_first_token_seconds_bucket{model_name="{model}"}[5m])))',
        unit="s",
    ),
    Signal(
        name="Compute time per request (Triton)",
        group=SignalGroup.LATENCY,
        query='sum(rate(nv_inference_compute_infer_duration_us{model="{model}"}[5m])) '
        '/ sum(rate(nv_inference_exec_count{model="{model}"}[5m])) / 1e6',
        unit="s",
    ),
    Signal(
        # Triton's queue time counts the wait in the scheduler's queue, the dynamic batcher's included.
        name="Batch queue wait per request (Triton)",
        group=SignalGroup.LATENCY,
        query='sum(rate(nv_inference_queue_duration_us{model="{model}"}[5m])) '
        '/ sum(rate(nv_inference_request_success{model="{model}"}[5m])) / 1e6',
        unit="s",
    ),
    # Traffic.
    Signal(name="Request rate", group=SignalGroup.TRAFFIC, query=f"sum(rate({_HTTP}}}[5m]))", unit="/s"),
    Signal(
        name="Token rate (vLLM)",
        group=SignalGroup.TRAFFIC,
        query='sum(rate(vllm:generation_tokens_total{model_name="{model}"}[5m]))',
        unit="/s",
    ),
    # Saturation: GPUs (NVIDIA DCGM exporter), CPU (cAdvisor), the scheduler (kube-state-metrics).
    Signal(
        name="GPU utilization (DCGM)",
        group=SignalGroup.SATURATION,
        query='avg(DCGM_FI_DEV_GPU_UTIL{namespace="{namespace}"})',
        unit="%",
    ),
    Signal(
        name="GPU memory used (DCGM)",
        group=SignalGroup.SATURATION,
        query='sum(DCGM_FI_DEV_FB_USED{namespace="{namespace}"}) '
        '/ (sum(DCGM_FI_DEV_FB_USED{namespace="{namespace}"}) + sum(DCGM_FI_DEV_FB_FREE{namespace="{namespace}"}))',
        unit="ratio",
    ),
    Signal(
        name="CPU used (cores)",
        group=SignalGroup.SATURATION,
        query='sum(rate(container_cpu_usage_seconds_total{namespace="{namespace}",container!=""}[5m]))',
    ),
    Signal(
        name="Pods pending",
        group=SignalGroup.SATURATION,
        query='sum(kube_pod_status_phase{namespace="{namespace}",phase="Pending"})',
    ),
    # Correctness: requests refused as invalid, and more than one image serving at once (a version mismatch).
    Signal(name="Validation errors", group=SignalGroup.CORRECTNESS, query=f'sum(rate({_HTTP},code=~"400|422"}}[5m]))'),
    Signal(
        name="Distinct images running",
        group=SignalGroup.CORRECTNESS,
        query='count(count by (image) (kube_pod_container_info{namespace="{namespace}"}))',
    ),
)
"""Golden signals from the exporters most clusters run: an HTTP server's http_requests_total and
http_request_duration_seconds, vLLM and Triton model-server metrics, NVIDIA's DCGM exporter, cAdvisor and
kube-state-metrics. A signal whose metrics a cluster lacks shows "no data"; replace the list in `evidence.signals`."""

DEFAULT_CHECKS: tuple[LayerCheck, ...] = (
    LayerCheck(
        name="Ingress 5xx share",
        layer=Layer.TRAFFIC,
        query='sum(rate(nginx_ingress_controller_requests{service="{service}",status=~"5.."}[5m])) '
        '/ sum(rate(nginx_ingress_controller_requests{service="{service}"}[5m]))',
        threshold=0.01,
        unit="ratio",
    ),
    LayerCheck(
        name="App 5xx share",
        layer=Layer.APP,
        query=f'sum(rate({_HTTP},code=~"5.."}}[5m])) / sum(rate({_HTTP}}}[5m]))',
        threshold=0.01,
        unit="ratio",
    ),
    LayerCheck(
        name="Container restarts (15 min)",
        layer=Layer.APP,
        query='sum(increase(kube_pod_container_status_restarts_total{namespace="{namespace}"}[15m]))',
        threshold=0,
    ),
    LayerCheck(
        name="Requests waiting (vLLM)",
        layer=Layer.MODEL_SERVER,
        query='sum(vllm:num_requests_waiting{model_name="{model}"})',
        threshold=10,
        saturation=True,
    ),
    LayerCheck(
        name="Inference failures (Triton)",
        layer=Layer.MODEL_SERVER,
        query='sum(rate(nv_inference_request_failure{model="{model}"}[5m]))',
        threshold=0,
        unit="/s",
    ),
    LayerCheck(
        name="Pods pending",
        layer=Layer.SCHEDULER,
        query='sum(kube_pod_status_phase{namespace="{namespace}",phase="Pending"})',
        threshold=0,
        saturation=True,
    ),
    LayerCheck(
        name="Nodes not ready",
        layer=Layer.NODE,
        query='sum(kube_node_status_condition{condition="Ready",status!="true"})',
        threshold=0,
    ),
    LayerCheck(
        name="GPU XID errors (DCGM)",
        layer=Layer.GPU,
        query='max(DCGM_FI_DEV_XID_ERRORS{namespace="{namespace}"})',
        threshold=0,
    ),
    LayerCheck(
        name="GPU utilization (DCGM)",
        layer=Layer.GPU,
        query='avg(DCGM_FI_DEV_GPU_UTIL{namespace="{namespace}"})',
        threshold=95,
        unit="%",
        saturation=True,
    ),
    LayerCheck(
        name="DNS failures (CoreDNS)",
        layer=Layer.NETWORK,
        query='sum(rate(coredns_dns_responses_total{rcode="SERVFAIL"}[5m]))',
        threshold=1,
        unit="/s",
    ),
    LayerCheck(
        name="Volume fullest",
        layer=Layer.STORAGE,
        query='max(kubelet_volume_stats_used_bytes{namespace="{namespace}"} '
        '/ kubelet_volume_stats_capacity_bytes{namespace="{namespace}"})',
        threshold=0.9,
        unit="ratio",
        saturation=True,
    ),
    LayerCheck(
        name="Dependency probes (blackbox)",
        layer=Layer.DEPENDENCY,
        query='min(probe_success{service="{service}"})',
        threshold=1,
        bad=Direction.BELOW,
    ),
)
"""One or more checks per layer, from kube-state-metrics, the kubelet, DCGM, CoreDNS, ingress-nginx, the
blackbox exporter and the model servers; replace the list in `evidence.checks`."""


class EvidenceConfig(BaseModel):
    """`evidence:` in FIREBREAK_CONFIG: what `/incident evidence` asks Prometheus (FIREBREAK_PROMETHEUS_URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signals: tuple[Signal, ...] = DEFAULT_SIGNALS
    checks: tuple[LayerCheck, ...] = DEFAULT_CHECKS
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    """How long one query may take before it counts as failed (the rest of the panel still shows)."""
    concurrency: int = Field(default=8, ge=1, le=32)
    """Queries in flight at once."""
    recovery_window_minutes: float = Field(default=10, gt=0, le=24 * 60)
    """How long every SLO signal must have met its target for recovery to count as verified (`/incident verify`,
    and `/incident resolve` before it resolves). Fractions are allowed (0.5 is 30 s)."""
    recovery_step_seconds: float = Field(default=30, gt=0, le=3600)
    """The spacing of the points checked over that window (the range query's step)."""
    chart: tuple[str, ...] = ()
    """The signals (by name) the panel's chart plots over the incident's window; empty: the SLO signals, then
    `p99 latency` and `Request rate`, whichever the scope's labels fill."""
    chart_max_panels: int = Field(default=4, ge=0, le=8)
    """At most this many plots in the chart; 0 turns the chart off."""

    @field_validator("signals", "checks")
    @classmethod
    def _unique(cls, v: tuple[Signal, ...] | tuple[LayerCheck, ...]) -> tuple[Signal, ...] | tuple[LayerCheck, ...]:
        names = [x.name for x in v]
        if len(set(names)) != len(names):
            raise ValueError("names must not repeat")
        return v

    @model_validator(mode="after")
    def _chart_names(self) -> EvidenceConfig:
        unknown = [name for name in self.chart if name not in {s.name for s in self.signals}]
        if unknown:
            raise ValueError(f"chart names signals that evidence.signals lacks: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _braces(self) -> EvidenceConfig:
        for name, query in [(s.name, s.query) for s in self.signals] + [(c.name, c.query) for c in self.checks]:
            if query.count("{") != query.count("}"):
                raise ValueError(f"{name}: unbalanced braces in its query")
        return self
