"""bench/alert_storm.py's storm, as Alertmanager would deliver it: which webhook bodies are POSTed when, per group.

Each group is one root cause (one service/model/pool scope, grouped by `service`) whose alerts start firing over
the storm: a burst at once, the rest over the ramp; part of them resolve a while later. Alertmanager's aggregation
group is modelled as it behaves: the first notification `group_wait` after the group's first alert, then a flush
every `group_interval` that sends the group's whole state (every firing alert, and each alert resolved since the
last notification, once) when it changed, or unchanged when `repeat_interval` has passed. So most alerts in a body
are resends of what the bot already has. Alertmanager's intervals are minutes; here they are seconds, so a minute
holds what a real storm spreads over an hour. The plan is a pure function of `Storm` and a wall-clock origin:
the sender (bench/_alert_sender.py) and the bench build the same one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ALERT_NAMES = ("ModelServerDown", "HighLatencyP99", "ErrorRateHigh", "GPUMemoryPressure", "QueueBacklog")
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Storm:
    groups: int = 20
    alerts_per_group: int = 250
    burst: int = 100
    """Alerts of each group that fire at the group's start (at most all); the rest fire evenly over `ramp`."""
    ramp: float = 40.0
    resolve_every: int = 10
    resolve_share: int = 3
    """Alerts i with i % resolve_every < resolve_share resolve, `resolve_after` s after they fired."""
    resolve_after: float = 12.0
    stagger: float = 0.05
    """Seconds between one group's first alert and the next's: the storm hits every group at nearly once."""
    group_wait: float = 0.5
    group_interval: float = 5.0
    repeat_interval: float = 15.0
    horizon: float = 58.0
    """No flush is scheduled after this (seconds from the start): everything is posted within a minute."""
    retry_every: int = 8
    """Every n-th POST is sent again, same body, as Alertmanager retries one whose answer it did not get."""

    @property
    def alerts(self) -> int:
        return self.groups * self.alerts_per_group


@dataclass(frozen=True)
class PlannedAlert:
    labels: dict[str, str]
    fingerprint: str
    fires_at: float
    resolves_at: float | None


@dataclass(frozen=True)
class Send:
    """One webhook POST of one group at `at` seconds from the start: the body and the occurrences it carries."""

    group: int
    at: float
    body: bytes
    occurrences: list[tuple[str, str]]
    """(fingerprint, status) of every alert in the body."""


def scope(group: int) -> dict[str, str]:
    return {"service": f"svc-{group:02d}", "model": f"model-{group:02d}", "pool": f"pool-{group:02d}"}


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's is a hash of the label set; any stable hash of it serves."""
    joined = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def group_alerts(storm: Storm, group: int) -> list[PlannedAlert]:
    start = group * storm.stagger
    later = max(1, storm.alerts_per_group - storm.burst)
    alerts = []
    for i in range(storm.alerts_per_group):
        fires = start + (0.0 if i < storm.burst else storm.ramp * (i - storm.burst + 1) / later)
        resolves = fires + storm.resolve_after if i % storm.resolve_every < storm.resolve_share else None
        labels = {
            "alertname": ALERT_NAMES[i % len(ALERT_NAMES)],
            "severity": "critical",
            "job": "model-server",
            "instance": f"10.{group}.{i // 100}.{i % 100}:9400",
            "pod": f"{scope(group)['model']}-{i:03d}",
            **scope(group),
        }
        alerts.append(PlannedAlert(labels, fingerprint(labels), fires, resolves))
    return alerts


def _stamp(origin: datetime, at: float) -> str:
    return (origin + timedelta(seconds=at)).isoformat().replace("+00:00", "Z")


def _alert_doc(a: PlannedAlert, origin: datetime, resolved: bool) -> dict[str, Any]:
    name, model, service = a.labels["alertname"], a.labels["model"], a.labels["service"]
    return {
        "status": "resolved" if resolved else "firing",
        "labels": a.labels,
        "annotations": {
            "summary": f"{name} on {model} for {service}",
            "description": f"{a.labels['pod']} ({a.labels['instance']}): {name}",
            "runbook_url": f"https://runbooks.example.com/{name.lower()}",
            "dashboard": f"https://grafana.example.com/d/model-serving?var-model={model}",
        },
        "startsAt": _stamp(origin, a.fires_at),
        "endsAt": _stamp(origin, a.resolves_at) if resolved and a.resolves_at is not None else ZERO_TIME,
        "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}%7Bmodel%3D%22{model}%22%7D",
        "fingerprint": a.fingerprint,
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def body(group: int, docs: list[dict[str, Any]]) -> bytes:
    service = scope(group)["service"]
    return json.dumps(
        {
            "receiver": "firebreak",
            "status": "firing" if any(d["status"] == "firing" for d in docs) else "resolved",
            "alerts": docs,
            "groupLabels": {"service": service},
            "commonLabels": _common([d["labels"] for d in docs]),
            "commonAnnotations": _common([d["annotations"] for d in docs]),
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": f'{{}}/{{severity="critical"}}:{{service="{service}"}}',
            "truncatedAlerts": 0,
        }
    ).encode()


def group_sends(storm: Storm, group: int, origin: datetime) -> list[Send]:
    """The flushes of one aggregation group, as Alertmanager's dispatcher times and fills them."""
    alerts = group_alerts(storm, group)
    sends: list[Send] = []
    notified: set[tuple[str, str]] = set()
    resolved_sent: set[str] = set()
    last_sent = -1e9
    at = group * storm.stagger + storm.group_wait
    while at <= storm.horizon:
        firing = [a for a in alerts if a.fires_at <= at and (a.resolves_at is None or a.resolves_at > at)]
        resolved = [
            a
            for a in alerts
            if a.resolves_at is not None and a.resolves_at <= at and a.fingerprint not in resolved_sent
        ]
        state = {(a.fingerprint, "firing") for a in firing} | {(a.fingerprint, "resolved") for a in resolved}
        if state and (state != notified or at - last_sent >= storm.repeat_interval):
            docs = [_alert_doc(a, origin, False) for a in firing] + [_alert_doc(a, origin, True) for a in resolved]
            sends.append(Send(group, at, body(group, docs), sorted(state)))
            notified, last_sent = state, at
            resolved_sent |= {a.fingerprint for a in resolved}
        at += storm.group_interval
    return sends


def plan(storm: Storm, origin: datetime | None = None) -> list[list[Send]]:
    """Every group's sends, in order; `origin` is the wall-clock time of second 0 (alerts' startsAt/endsAt)."""
    origin = origin or datetime.now(UTC)
    return [group_sends(storm, g, origin) for g in range(storm.groups)]
