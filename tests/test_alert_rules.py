"""Routing, inhibition, scope and alert quality as pure functions of labels, on the shape of a real payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.core.alert_rules import Action, AlertConfig, covers, inhibitor, quality, route
from bot.models import Alert, AlertmanagerWebhook

REAL = json.loads((Path(__file__).parent / "payloads" / "alertmanager_firing.json").read_text())


def alert(**labels: str) -> Alert:
    base = dict(REAL["alerts"][0])  # the fingerprint is Alertmanager's hash of the labels: ours then, for new ones
    return Alert.model_validate({**base, "fingerprint": "", "labels": {"alertname": "ModelServerDown", **labels}})


def config(**raw: object) -> AlertConfig:
    return AlertConfig.model_validate(raw)


def test_a_real_payload_parses_and_a_wrong_version_is_refused() -> None:
    hook = AlertmanagerWebhook.model_validate(REAL)
    assert hook.alerts[0].name == "ModelServerDown" and hook.alerts[0].ends_at is None
    with pytest.raises(ValidationError):
        AlertmanagerWebhook.model_validate({**REAL, "version": "3"})
    with pytest.raises(ValidationError, match="alertname"):
        AlertmanagerWebhook.model_validate({**REAL, "alerts": [{**REAL["alerts"][0], "labels": {}}]})


def test_without_routes_paging_alerts_declare_and_the_rest_go_to_triage() -> None:
    assert route(config(), alert(severity="critical"), triage=True).action is Action.DECLARE
    assert route(config(), alert(severity="page"), triage=False).action is Action.DECLARE
    assert route(config(), alert(severity="warning"), triage=True).action is Action.TRIAGE
    assert route(config(), alert(severity="warning"), triage=False).action is Action.IGNORE


def test_first_matching_route_wins_with_anchored_regexes_and_severity_from_a_label() -> None:
    rules = config(
        routes=[
            {"match": {"team": "search"}, "action": "ignore"},
            {"match_re": {"service": "checkout|payments"}, "action": "declare", "severity_label": "priority"},
            {"match_re": {"service": "check"}, "action": "declare", "severity": 1},
            {"match": {}, "action": "triage"},
        ]
    )
    assert route(rules, alert(team="search", service="checkout"), triage=True).action is Action.IGNORE
    chosen = route(rules, alert(service="payments", priority="SEV1"), triage=True)
    assert (chosen.action, chosen.severity) == (Action.DECLARE, 1)
    assert route(rules, alert(service="checkout"), triage=True).severity == 2, "no priority label: the default"
    assert route(rules, alert(service="checkout-v2"), triage=True).action is Action.TRIAGE, "anchored: no partial match"
    with pytest.raises(ValidationError, match="not a valid regex"):
        config(routes=[{"match_re": {"service": "("}, "action": "declare"}])


def test_inhibition_needs_the_equal_labels_and_never_inhibits_itself() -> None:
    rules = config(inhibit=[{"source": {"match": {"alertname": "ClusterDown"}}, "target": {}, "equal": ["cluster"]}])
    down = Alert.model_validate(
        {**REAL["alerts"][0], "fingerprint": "", "labels": {"alertname": "ClusterDown", "cluster": "prod"}}
    )
    assert inhibitor(rules, alert(cluster="prod"), [down]) == down
    assert inhibitor(rules, alert(cluster="staging"), [down]) is None
    assert inhibitor(rules, down, [down]) is None


def test_scope_and_quality() -> None:
    assert covers({"service": "checkout"}, {"service": "checkout", "pool": "a100"})
    assert not covers({"service": "checkout", "pool": "h100"}, {"service": "checkout", "pool": "a100"})
    assert not covers({}, {"service": "checkout"}), "an incident with no scope claims nothing"
    bare = Alert.model_validate({**REAL["alerts"][0], "labels": {"alertname": "X"}, "annotations": {}})
    assert quality(config(), bare) == ["no scope label (service, model, pool)", "no runbook_url annotation"]
    assert quality(config(), alert(service="checkout")) == []
