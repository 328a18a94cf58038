"""What to do with an alert, decided from its labels as Alertmanager's own routes decide: matchers (equality and
anchored regex), first matching route wins; and which alerts an inhibiting alert explains."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.models import Alert

SCOPE_LABELS = ("service", "model", "pool", "cluster", "namespace")
PAGING = ("critical", "page")


class Action(StrEnum):
    DECLARE = "declare"
    TRIAGE = "triage"
    """Post it in the triage channel with Declare incident / Ignore."""
    IGNORE = "ignore"


class Matchers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, str] = Field(default_factory=dict)
    """label: value, all equal (an absent label is the empty string, as in Alertmanager)."""
    match_re: dict[str, str] = Field(default_factory=dict)
    """label: regex, all matching the whole value (anchored, as Alertmanager anchors them)."""

    @field_validator("match_re")
    @classmethod
    def _compiles(cls, v: dict[str, str]) -> dict[str, str]:
        for label, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label}: {pattern!r} is not a valid regex: {exc}") from None
        return v

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k, "") != v for k, v in self.match.items()):
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())


class AlertRoute(Matchers):
    action: Action
    severity: int | None = Field(default=None, ge=1, le=9)
    """The incident's severity when it declares; else from `severity_label`, else alerts.default_severity."""
    severity_label: str | None = None
    """A label whose value names the severity: 1-9, sev1-sev9 (any case)."""


class Inhibit(BaseModel):
    """While an alert matching `source` fires, alerts matching `target` with the same `equal` labels are explained
    by it: they join its incident's timeline, marked so, and open nothing of their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Matchers
    target: Matchers
    equal: tuple[str, ...] = ()


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: tuple[AlertRoute, ...] = ()
    """First match wins. None configured: `severity` critical or page declares, anything else goes to triage."""
    default_severity: int = Field(default=2, ge=1, le=9)
    scope_labels: tuple[str, ...] = SCOPE_LABELS
    """Labels that say what is affected: an alert whose scope matches an open incident's attaches to it."""
    inhibit: tuple[Inhibit, ...] = ()
    require_labels: tuple[str, ...] = ("service", "model", "pool")
    """An alert with none of these is flagged as lacking scope (alert quality)."""
    require_annotations: tuple[str, ...] = ("runbook_url",)
    """An alert without these annotations is flagged (alert quality)."""


@dataclass(frozen=True)
class Decision:
    action: Action
    severity: int


def route(config: AlertConfig, alert: Alert, *, triage: bool) -> Decision:
    """The first matching route's action; with no routes, page-worthy alerts declare and the rest go to triage
    (or are ignored when there is no triage channel)."""
    for r in config.routes:
        if r.matches(alert.labels):
            action = r.action
            if action is Action.TRIAGE and not triage:
                action = Action.IGNORE
            return Decision(action, r.severity or _labelled(alert, r.severity_label) or config.default_severity)
    if alert.labels.get("severity", "").lower() in PAGING:
        return Decision(Action.DECLARE, config.default_severity)
    return Decision(Action.TRIAGE if triage else Action.IGNORE, config.default_severity)


def _labelled(alert: Alert, label: str | None) -> int | None:
    if not label:
        return None
    m = re.fullmatch(r"(?:sev)?([1-9])", alert.labels.get(label, "").strip().lower())
    return int(m[1]) if m else None


def inhibitor(config: AlertConfig, alert: Alert, firing: list[Alert]) -> Alert | None:
    """A firing alert that explains `alert` by an inhibition rule (never itself)."""
    for rule in config.inhibit:
        if not rule.target.matches(alert.labels):
            continue
        for source in firing:
            if source.identity == alert.identity or not rule.source.matches(source.labels):
                continue
            if all(source.labels.get(k, "") == alert.labels.get(k, "") for k in rule.equal):
                return source
    return None


def quality(config: AlertConfig, alert: Alert) -> list[str]:
    """What the alert lacks by good practice: a scope label people can act on, a runbook."""
    flags = []
    if config.require_labels and not any(alert.labels.get(k) for k in config.require_labels):
        flags.append(f"no scope label ({', '.join(config.require_labels)})")
    flags += [f"no {a} annotation" for a in config.require_annotations if not alert.annotations.get(a)]
    return flags


def covers(incident_scope: dict[str, str], alert_scope: dict[str, str]) -> bool:
    """An alert belongs to an open incident when it names everything the incident's scope names, alike."""
    return bool(incident_scope) and all(alert_scope.get(k) == v for k, v in incident_scope.items())


def related(incident_scope: dict[str, str], alert_scope: dict[str, str]) -> bool:
    """The same root cause, whichever is narrower: one scope contains the other (same values where both name a
    label). A model down and its whole service down in that cluster are one incident, in either order."""
    if not incident_scope or not alert_scope:
        return False
    common = incident_scope.keys() & alert_scope.keys()
    if any(incident_scope[k] != alert_scope[k] for k in common):
        return False
    return common in (incident_scope.keys(), alert_scope.keys())
