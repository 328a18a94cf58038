"""`/incident guide` and the stabilizer catalogue: the shipped catalogue loads with every reference resolving, the
guide walks the decision tree through signed clicks (each answer on the timeline, one message edited in place),
and a scenario is suggested when the incident's alert fits its hints."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.catalogue import SHIPPED, GuideConfig, Scenario, catalogue, load_catalogue, matches, unresolved
from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ConfigError
from bot.core.guide import Answer
from bot.models import Actor, GuideAnswered, Incident
from bot.models.alerts import AlertOrigin
from bot.render.guide import answer_actions, guide_action
from playbooks import discover
from tests.harness import Harness

TEN = {
    "apiserver-slow",
    "etcd-write-timeouts",
    "admission-webhook-outage",
    "terraform-state-lock",
    "terraform-unexpected-destroy",
    "endpointslice-stale-rollout",
    "artifact-store-slow-scaleout",
    "retry-storm",
    "gpu-device-plugin-flapping",
    "gitops-reverts-hotfix",
}


def test_the_shipped_catalogue_loads_and_every_reference_resolves() -> None:
    config = IncidentConfig()
    shipped = load_catalogue(SHIPPED)
    assert {s.id for s in shipped} == TEN
    assert all(s.first_stabilizer and s.prevention and s.symptoms for s in shipped)
    names = [p.name for p in discover(config)]
    assert unresolved(shipped, config.evidence, names) == []
    assert unresolved(shipped, config.evidence, []) != [], "playbook names are checked"


def test_configured_scenarios_extend_and_override_the_shipped_ones(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.yaml"
    path.write_text(
        "guide:\n  catalogue:\n"
        "    - {id: retry-storm, title: Ours, symptoms: s, layers: [traffic], first_stabilizer: shed,"
        " prevention: budgets}\n"
        "    - {id: quota, title: Cloud quota hit, symptoms: s, layers: [node], first_stabilizer: f, prevention: p,"
        " playbooks: [scale], match: {alerts: [QuotaExceeded]}}\n"
    )
    config = load_config(path)
    scenarios = {s.id: s for s in catalogue(config.guide)}
    assert len(scenarios) == 11 and scenarios["retry-storm"].title == "Ours"
    assert catalogue(GuideConfig(shipped=False, catalogue=config.guide.catalogue))[1].id == "quota"
    path.write_text("guide:\n  catalogue:\n    - {id: x, title: t, symptoms: s, layers: [nowhere]}\n")
    with pytest.raises(ConfigError, match="guide"):
        load_config(path)


def _incident(**update: Any) -> Incident:
    base = Incident(id=1, title="Checkout errors", severity=2, declared_at=datetime.now(UTC), declared_by="U1")
    return base.model_copy(update=update)


def test_match_hints_read_the_alert_name_labels_and_title() -> None:
    (gpu,) = [s for s in load_catalogue(SHIPPED) if s.id == "gpu-device-plugin-flapping"]
    origin = AlertOrigin(name="DCGMXidErrors", summary="x", starts_at=datetime.now(UTC))
    assert matches(gpu, _incident(origin=origin))
    assert matches(gpu, _incident(scope={"pool": "gpu-a100"}))
    assert matches(gpu, _incident(title="NVIDIA driver crash"))
    assert not matches(gpu, _incident())
    assert isinstance(gpu, Scenario)


CLICKS = itertools.count()


def click(incident: Incident, message: dict[str, Any], answer: str) -> dict[str, Any]:
    (button,) = [
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == guide_action(answer)
    ]
    return {
        "channel": {"id": incident.channel_id},
        "container": {"type": "message", "channel_id": incident.channel_id, "is_ephemeral": True},
        "trigger_id": f"trig-guide-{next(CLICKS)}",
        "actions": [dict(button, action_ts=f"{datetime.now(UTC).timestamp()}")],
    }


def text_of(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


async def test_the_guide_walks_the_tree_records_each_answer_and_suggests_a_scenario(bot: Harness) -> None:
    await bot.run("declare sev2 Checkout errors")
    (incident,) = await bot.fb.service.list_open()
    origin = AlertOrigin(name="DCGMXidErrors", summary="XID 79", starts_at=datetime.now(UTC))
    incident = await bot.fb.store.save(incident.model_copy(update={"origin": origin}), [], "test:origin")
    assert incident.channel_id

    await bot.run("guide", channel=incident.channel_id)
    message = bot.slack.responses[-1]
    assert "Is user impact active right now?" in text_of(message)
    assert "GPU device plugin flapping" in text_of(message), "the alert fits the scenario's hints"

    for rid, answer in enumerate(("yes", "gpu", "no", "yes")):
        status, _ = await bot.interaction(
            "block_actions",
            user="UBOB",
            response_url=bot.slack.response_url(f"guide{rid}"),
            **click(incident, message, answer),
        )
        assert status == 200
        await bot.settle()
        message = bot.slack.responses[-1]
        assert message["replace_original"] is True, "one message, edited in place"

    shown = text_of(message)
    assert "Mitigate first" in shown and "`/incident mitigate cordon`" in shown
    assert "*Which layer is failing?* gpu" in shown and "GPU XID errors (DCGM)" in shown
    assert "No recent change" in shown and "Reduce load, add warm capacity, or shed" in shown
    assert "`/incident verify`" in shown
    left = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert not [a for a in left if a in answer_actions()], "the path ended"
    assert left.count("fb_guide_revise") == 4, "every answer can be given again"
    plans = [
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("fb_guide_playbook_")
    ]
    # The scenario's playbooks where impact is active; scale where it is saturation.
    shown_plans = [e["text"]["text"] for e in plans]
    assert shown_plans == ["Plan cordon", "Plan drain", "Plan scale", "Plan uncordon", "Plan scale"]

    # A playbook button opens the Mitigate form with that playbook chosen, to check and submit.
    await bot.interaction(
        "block_actions",
        user="UBOB",
        channel={"id": incident.channel_id},
        container={"type": "message", "channel_id": incident.channel_id, "is_ephemeral": True},
        trigger_id="trig-guide-plan",
        actions=[dict(plans[1], action_ts="1.0")],
    )
    await bot.settle()
    (opened,) = bot.slack.calls_to("views.open")
    form = opened["view"]["blocks"]
    assert form[0]["element"]["initial_option"]["value"] == "drain"
    assert "initial_value" not in form[1]["element"], "this incident has no scope to fill parameters from"
    events = await bot.fb.service.timeline(incident.id)
    answers = [
        (e.payload.question, e.payload.answer, e.actor.id) for e in events if isinstance(e.payload, GuideAnswered)
    ]
    assert answers == [
        ("impact", "yes", "UBOB"),
        ("layer", "gpu", "UBOB"),
        ("change", "no", "UBOB"),
        ("saturation", "yes", "UBOB"),
    ]


async def test_a_recent_change_ends_the_path_at_rollback_then_verify(bot: Harness) -> None:
    await bot.run("declare sev3 Latency")
    (incident,) = await bot.fb.service.list_open()
    await bot.run("guide", channel=incident.channel_id)
    message = bot.slack.responses[-1]
    assert "GPU device plugin" not in text_of(message), "nothing suggested without a matching alert"
    for rid, answer in enumerate(("no", "app", "yes")):
        await bot.interaction(
            "block_actions",
            user="UALICE",
            response_url=bot.slack.response_url(f"g{rid}"),
            **click(incident, message, answer),
        )
        await bot.settle()
        message = bot.slack.responses[-1]
    shown = text_of(message)
    assert "preserve the evidence" in shown and "`/incident changes`" in shown and "`/incident verify`" in shown
    assert "saturation" not in shown.lower()


def test_the_example_configs_guide_scenario_loads_when_uncommented(tmp_path: Path) -> None:
    """deploy/firebreak.example.yaml's guide section is valid configuration as written, and resolves."""
    lines = (Path(__file__).parents[1] / "deploy" / "firebreak.example.yaml").read_text().splitlines()
    start = lines.index("# guide:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ")]
    path = tmp_path / "guide.yaml"
    path.write_text("\n".join(block) + "\n")
    config = load_config(path)
    scenarios = {s.id: s for s in catalogue(config.guide)}
    assert len(scenarios) == 11 and scenarios["cloud-quota-exhausted"].playbooks == ("scale",)
    names = [p.name for p in discover(config)]
    assert unresolved(scenarios.values(), config.evidence, names) == []


async def test_two_requests_pre_answering_at_once_record_each_answer_once(bot: Harness) -> None:
    """The double click's two jobs both go on to record what the facts settle: each version is taken by exactly one
    of them (the real store's append, keyed by the version), and both read back the same whole path."""
    from bot.core.guiding import Hint, path_of, run_events
    from bot.core.jobs import Op
    from handlers.guide import _pre_answer, _record
    from handlers.registry import InteractionContext

    await bot.run("declare sev2 Checkout errors")
    (incident,) = await bot.fb.service.list_open()
    contexts = [
        InteractionContext(bot.fb.service, None, "UBOB", incident.channel_id or "", Op.fresh())  # type: ignore[arg-type]
        for _ in range(2)
    ]
    taken = await asyncio.gather(
        *(
            _record(c, incident, "r1", 0, 0, Answer("impact", a), Actor.user("UBOB"))
            for c, a in zip(contexts, ("yes", "no"), strict=True)
        )
    )
    assert sorted(taken) == [False, True], "one version, one answer"
    given = {"layer": Hint("gpu", "suspect: gpu"), "change": Hint("no", "none"), "saturation": Hint("yes", "queue")}
    ends = await asyncio.gather(*(_pre_answer(c, incident, "r1", given) for c in contexts))
    paths = [[(a.question, a.answer) for a in path_of([e.payload for e in end])] for end in ends]  # type: ignore[misc]
    assert paths[0] == paths[1] and [q for q, _ in paths[0]] == ["impact", "layer", "change", "saturation"]
    events = run_events(await bot.fb.service.timeline(incident.id), "r1")
    versions = [e.payload.version for e in events]  # type: ignore[union-attr]
    assert versions == [0, 1, 2, 3], "each answer recorded once"


def test_a_click_fits_slacks_button_value_limit_whatever_the_bases_say() -> None:
    from bot.core.guiding import BASIS_CHARS, Hint
    from bot.render.guide import VALUE_LIMIT, Click, decode, encode

    long = "Задержка ответа модели выше порога; " * 10
    hints = {q: Hint(a, long[:BASIS_CHARS]) for q, a in (("impact", "yes"), ("layer", "gpu"), ("change", "no"))}
    hints["saturation"] = Hint("yes", "x" * BASIS_CHARS)
    click = Click(12345, "a1b2c3d4e5", 7, 3, "yes", hints)
    value = encode(click)
    assert len(value) <= VALUE_LIMIT
    back = decode(value)
    assert (back.incident, back.run, back.version, back.step, back.answer) == (12345, "a1b2c3d4e5", 7, 3, "yes")
    assert {q: h.answer for q, h in back.hints.items()} == {q: h.answer for q, h in hints.items()}
    short = encode(Click(1, "r", 0, 0, "no", {"impact": Hint("no", "every SLO met")}))
    assert decode(short).hints["impact"].basis == "every SLO met", "a basis that fits travels whole"
