"""The guide answers from the facts: a real Prometheus scraping an exporter the test sets (SLO missed, GPU layer
suspect) and the Kubernetes stand-in holding a fresh rollout. firebreak pre-answers impact, layer and change with
their basis; the IC answers one differently and the facts take it from there; a double click records once and a
click from an older view records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.guiding import path_of
from bot.models import ActorKind, GuideAnswered, Incident
from tests.conftest import make_settings
from tests.harness import Harness, running
from tests.kube_standin import KubeStandIn
from tests.mitigation_driver import click
from tests.prom_proc import Exporter, Prometheus
from tests.slack_standin import SlackStandIn

SCOPE = {"service": "checkout", "namespace": "serving"}


@pytest.fixture
async def bot(
    slack: SlackStandIn,
    redis_url: str,
    kube: KubeStandIn,
    prom_exporter: Exporter,
    prometheus: Prometheus,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    prom_exporter.grow("http_requests_total", 95, {"service": "checkout", "code": "200"})
    prom_exporter.grow("http_requests_total", 5, {"service": "checkout", "code": "500"})
    prom_exporter.set("DCGM_FI_DEV_GPU_UTIL", 98, {"namespace": "serving", "gpu": "0"})
    prom_exporter.set("kube_pod_status_phase", 0, {"namespace": "serving", "phase": "Pending"})
    for within in (15, 5, 5):  # rate() needs two samples
        await prom_exporter.scraped(within=within)
    kube.add_deployment("checkout", "serving", images_by_revision=("reg/checkout:v1", "reg/checkout:v2"))
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    settings = make_settings(
        slack, redis_url, prometheus_url=prometheus.url, kubeconfig=kubeconfig, kube_context="prod"
    )
    async with running(settings, slack) as h:
        yield h


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def text_of(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def context_of(message: dict[str, Any]) -> str:
    return "\n".join(e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"])


async def press(bot: Harness, incident: Incident, element: dict[str, Any], user: str = "UBOB") -> None:
    """Click one of the guide message's buttons (several share an action_id across blocks, so by its value)."""
    await click(bot, incident, {"ts": "1.1"}, element["action_id"], user, value=element["value"])


async def guide_events(bot: Harness, incident: Incident) -> list[tuple[str, str, str, bool]]:
    return [
        (e.payload.question, e.payload.answer, e.actor.id or e.actor.kind.value, bool(e.payload.basis))
        for e in await bot.fb.service.timeline(incident.id)
        if isinstance(e.payload, GuideAnswered)
    ]


async def test_the_guide_pre_answers_from_evidence_and_changes_and_the_ic_can_answer_differently(
    bot: Harness,
) -> None:
    await bot.run("declare sev2 Checkout errors")
    (incident,) = await bot.fb.service.list_open()
    incident = await bot.fb.store.save(incident.model_copy(update={"scope": SCOPE}), [], "test:scope")
    assert incident.channel_id

    await bot.run("guide", channel=incident.channel_id)
    message = bot.slack.responses[-1]
    shown = text_of(message)
    assert "*Is user impact active right now?* yes (firebreak, from the facts: Success rate 0.95" in shown
    assert "below its SLO 0.999 (burn 5" in shown
    assert "*Which layer is failing?* gpu (firebreak, from the facts: suspect: app (App 5xx share), gpu" in shown
    assert "*Did something change recently in the scope?* yes (firebreak, from the facts: 2 change(s)" in shown
    assert "Deployment serving/checkout revision 2" in shown
    assert "rolled out revision 2 (current)" in shown, "the change itself, with its buttons"
    labels = [e["text"]["text"] for e in elements(message)]
    assert labels.count("Answer differently") == 3
    assert {"rollback", "pause-rollout"} <= set(labels), labels
    assert "`/incident verify`" in shown, "the facts settled the whole path"
    assert await guide_events(bot, incident) == [
        ("impact", "yes", "firebreak", True),
        ("layer", "gpu", "firebreak", True),
        ("change", "yes", "firebreak", True),
    ]
    await bot.run("timeline", channel=incident.channel_id)
    assert "Guide: Is user impact active right now? yes (from the facts: Success rate" in str(bot.slack.responses[-1])

    # The IC knows the rollout was a no-op: answer the change question differently.
    revise = [e for e in elements(message) if e["text"]["text"] == "Answer differently"][2]
    await press(bot, incident, revise)
    await bot.settle()
    asking = bot.slack.responses[-1]
    assert asking["replace_original"] is True
    assert "*Did something change recently in the scope?*\nThe facts suggest *yes*: 2 change(s)" in text_of(asking)
    choice = {e["text"]["text"]: e for e in elements(asking)}
    assert choice["yes"].get("style") == "primary" and "style" not in choice["no"]
    assert len(await guide_events(bot, incident)) == 3, "asking again records nothing"

    # A double click on "no": two requests at once, one answer recorded.
    await asyncio.gather(press(bot, incident, choice["no"]), press(bot, incident, choice["no"]))
    await bot.settle()
    after = bot.slack.responses[-1]
    shown = text_of(after)
    assert "*Did something change recently in the scope?* no\nNo recent change" in shown
    assert "*Is it saturation or a failing dependency?* yes (firebreak, from the facts: past threshold: " in shown
    assert "GPU utilization (DCGM)" in shown
    assert "Plan scale" in [e["text"]["text"] for e in elements(after)]
    events = await guide_events(bot, incident)
    assert events[3:] == [("change", "no", "UBOB", False), ("saturation", "yes", "firebreak", True)]
    timeline = await bot.fb.service.timeline(incident.id)
    answers = [e.payload for e in timeline if isinstance(e.payload, GuideAnswered)]
    assert [(a.question, a.answer) for a in path_of(answers)] == [
        ("impact", "yes"),
        ("layer", "gpu"),
        ("change", "no"),
        ("saturation", "yes"),
    ]
    assert all(
        e.actor.kind is ActorKind.FIREBREAK
        for e in timeline
        if isinstance(e.payload, GuideAnswered) and e.payload.basis
    )

    # A late click on "yes" from the older view: nothing is recorded, and the guide shows as it stands.
    await press(bot, incident, choice["yes"])
    await bot.settle()
    stale = bot.slack.responses[-1]
    assert "That button was from an older view of this guide" in text_of(stale)
    assert "(Did something change recently in the scope? no; Is it saturation" in text_of(stale)
    assert await guide_events(bot, incident) == events
    # So does "Answer differently" from the first view.
    await press(bot, incident, revise)
    await bot.settle()
    assert "older view" in text_of(bot.slack.responses[-1])
    assert await guide_events(bot, incident) == events

    # The IC re-answers the layer. The change question, which the IC answered in this run, is asked again with the
    # facts' suggestion instead of being answered over the IC; saturation, never the IC's, is answered again.
    layer = [e for e in elements(after) if e["text"]["text"] == "Answer differently"][1]
    await press(bot, incident, layer)
    await bot.settle()
    app = {e["text"]["text"]: e for e in elements(bot.slack.responses[-1])}["app"]
    await press(bot, incident, app)
    await bot.settle()
    asking = bot.slack.responses[-1]
    assert "*Did something change recently in the scope?*\nThe facts suggest *yes*" in text_of(asking)
    assert (await guide_events(bot, incident))[5:] == [("layer", "app", "UBOB", False)]
    no = {e["text"]["text"]: e for e in elements(asking)}["no"]
    await press(bot, incident, no)
    await bot.settle()
    assert (await guide_events(bot, incident))[6:] == [
        ("change", "no", "UBOB", False),
        ("saturation", "yes", "firebreak", True),
    ]
    timeline = await bot.fb.service.timeline(incident.id)
    answers = [e.payload for e in timeline if isinstance(e.payload, GuideAnswered)]
    assert [a.version for a in answers] == list(range(8)), "each version recorded once"
    assert [(a.question, a.answer) for a in path_of(answers)] == [
        ("impact", "yes"),
        ("layer", "app"),
        ("change", "no"),
        ("saturation", "yes"),
    ]


async def test_without_prometheus_or_a_cluster_the_guide_asks_and_says_what_it_could_not_read(
    slack: SlackStandIn, redis_url: str
) -> None:
    async with running(make_settings(slack, redis_url), slack) as bot:
        await bot.run("declare sev2 Checkout errors")
        (incident,) = await bot.fb.service.list_open()
        await bot.run("guide", channel=incident.channel_id)
        message = bot.slack.responses[-1]
        assert "Is user impact active right now?" in text_of(message)
        assert "The facts suggest" not in text_of(message)
        said = context_of(message)
        assert "Left out: " in said and "evidence: The evidence panel needs Prometheus" in said
        assert "changes: the incident's scope names no namespace" in said
        assert await guide_events(bot, incident) == []
