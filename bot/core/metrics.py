"""Prometheus metrics for one firebreak process, on a registry of its own so tests and apps never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.slack_requests = Counter(
            "firebreak_slack_requests_total",
            "Slack requests received, by kind and HTTP status.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "firebreak_ack_seconds",
            "Time from receiving a Slack request to answering it.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.commands = Counter(
            "firebreak_commands_total",
            "Subcommands run after their ack, by outcome (ok, user_error, failed).",
            ["subcommand", "outcome"],
            registry=self.registry,
        )
        self.incidents_declared = Counter(
            "firebreak_incidents_declared_total",
            "Incidents declared, by severity.",
            ["severity"],
            registry=self.registry,
        )
        self.slack_api_errors = Counter(
            "firebreak_slack_api_errors_total",
            "Slack Web API calls that failed, by method and error code.",
            ["method", "error"],
            registry=self.registry,
        )
        self.background_tasks = Gauge(
            "firebreak_background_tasks",
            "Jobs (post-ack work) running in this process.",
            registry=self.registry,
        )
        self.jobs = Counter(
            "firebreak_jobs_total",
            "Jobs run by this process, by kind and outcome (ok, retry, gave_up, interrupted, unrecorded, dropped).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.reminders = Counter(
            "firebreak_update_reminders_total",
            "Reminders sent to ICs for overdue status updates.",
            registry=self.registry,
        )

        self.alerts = Counter(
            "firebreak_alerts_total",
            "Alert occurrences received, by what became of them (declared, attached, inhibited, resolved, ignored).",
            ["outcome"],
            registry=self.registry,
        )
        self.alert_flags = Counter(
            "firebreak_alert_quality_flags_total",
            "Alerts flagged for what they lack by good practice (a scope label, a runbook), by alert name and flag.",
            ["alertname", "flag"],
            registry=self.registry,
        )
        self.time_to_recover = Histogram(
            "firebreak_time_to_recover_seconds",
            "From impact start (else the declaration) to verified recovery, by severity: what MTTR averages.",
            ["severity"],
            buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
