"""`/incident changes` end to end: a signed slash command through the real endpoint, the Kubernetes stand-in as
cluster `prod`, and a click on a change's button producing a plan for approval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.models import Incident, MitigationState
from tests.harness import Harness
from tests.kube_standin import KubeStandIn
from tests.mitigation_driver import buttons, click, declare, firebreak_with_cluster, plan_message, text_of
from tests.slack_standin import SlackStandIn

CHANGE = "fb_change_mitigate"
IMAGES = ("registry.example.com/checkout:v1", "registry.example.com/checkout:v2", "registry.example.com/checkout:v3")
OLD_OS, NEW_OS = "Container-Optimized OS 113", "Container-Optimized OS 117"


def ago(**kw: float) -> str:
    return (datetime.now(UTC) - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def backdate(kube: KubeStandIn, plural: str, name: str, namespace: str, **kw: float) -> None:
    """Seeding only: the API server sets creationTimestamp itself when an object is created, so an object made
    long ago is written here, as it would have been then."""
    kube.change(plural, name, namespace, lambda o: o["metadata"].update(creationTimestamp=ago(**kw)))


def seed(kube: KubeStandIn) -> None:
    kube.add_deployment("checkout", "serving", images_by_revision=IMAGES)
    first = kube.replicasets_of("checkout", "serving")[0]
    backdate(kube, "replicasets", first["metadata"]["name"], "serving", hours=10)
    kube.add_deployment("search", "serving", images_by_revision=("registry.example.com/search:v9",))

    kube.add_application("checkout")

    def synced(app: dict[str, Any]) -> None:
        app["spec"]["destination"]["namespace"] = "serving"
        app["status"]["history"] = [
            {"id": 1, "revision": "0ld0ld0", "deployedAt": ago(hours=30), "source": app["spec"]["source"]},
            {"id": 2, "revision": "abc1234", "deployedAt": ago(hours=2), "source": app["spec"]["source"]},
        ]

    kube.change("applications", "checkout", "argocd", synced)
    for n in range(3):
        kube.add_node(f"a100-old-{n}", pool="a100", node_info={"osImage": OLD_OS})
        backdate(kube, "nodes", f"a100-old-{n}", "", days=5)
    for n in range(2):
        kube.add_node(
            f"a100-new-{n}", pool="a100", node_info={"osImage": NEW_OS}, labels={"nvidia.com/cuda.driver.major": "550"}
        )
    kube.add_node("cpu-0", pool="general")
    kube.fail("list", "helmreleases", 404, message="the server could not find the requested resource")


@pytest.fixture
async def bot(slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[Harness]:
    seed(kube)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as h:
        yield h


async def scoped(bot: Harness) -> Incident:
    incident = await declare(bot, "Checkout errors")
    return await bot.fb.store.save(
        incident.model_copy(update={"scope": {"namespace": "serving", "service": "checkout"}}), [], "test:scope"
    )


async def changes(bot: Harness, incident: Incident, args: str = "") -> dict[str, Any]:
    assert incident.channel_id
    before = len(bot.slack.responses)
    await bot.run(f"changes {args}".strip(), user="UALICE", channel=incident.channel_id)
    answers = bot.slack.responses[before:]
    assert answers, "no reply"
    return {"ts": "1.1", **answers[-1]}


def values(reply: dict[str, Any]) -> list[str]:
    return [e["value"] for b in reply.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


async def test_changes_lists_rollouts_syncs_and_a_split_pool_newest_first(bot: Harness, kube: KubeStandIn) -> None:
    incident = await scoped(bot)
    reply = await changes(bot, incident)
    shown = text_of(reply)
    assert "cluster `prod`, namespace `serving`, service `checkout`" in shown
    assert "revision 3 (current): `registry.example.com/checkout:v3`" in shown
    assert "revision 2: `registry.example.com/checkout:v2`" in shown
    assert shown.index("revision 3") < shown.index("revision 2"), "newest first"
    assert "checkout:v1" not in shown and "revision 1" not in shown, "a rollout before the window is left out"
    assert "search" not in shown, "another service's Deployment is out of scope"
    assert "Application `argocd/checkout` synced to `abc1234`" in shown and "0ld0ld0" not in shown
    assert shown.index("revision 2") < shown.index("abc1234"), "the sync two hours ago is older than the rollouts"
    assert "Pool `a100` is split across 2 node images" in shown
    assert f"Newest (appeared in the window): 2 node(s) on {NEW_OS}" in shown and "GPU driver 550" in shown
    assert f"3 node(s) on {OLD_OS}" in shown and "general" not in shown
    assert "serves no HelmRelease (helm.toolkit.fluxcd.io/v2); skipped" in shown
    sent = values(reply)
    assert any('"rollback"' in v and 'deployment=checkout namespace=serving"' in v for v in sent)
    assert any('"rollback"' in v and "namespace=serving revision=1" in v for v in sent), "undoing revision 2"
    assert sum('"pause-rollout"' in v for v in sent) == 1, "pausing is offered on the current revision only"
    assert any('"pause-sync"' in v and "application=checkout namespace=argocd" in v for v in sent)
    assert any('"cordon"' in v and "nodes=a100-new-0,a100-new-1" in v for v in sent)
    assert all(len(v) <= 2000 for v in sent)


async def test_a_change_button_posts_a_rollback_plan_for_approval(bot: Harness, kube: KubeStandIn) -> None:
    incident = await scoped(bot)
    reply = await changes(bot, incident)
    (element,) = [
        e
        for b in reply["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if '"rollback"' in e["value"] and "revision=" not in e["value"]
    ]
    assert element["action_id"].startswith(CHANGE + "_"), "ids unique within the block"
    answer = await click(bot, incident, reply, element["action_id"], "UBOB", value=element["value"])
    assert "Plan M1" in answer and "for approval" in answer
    m = await bot.fb.service.mitigation.get(incident.id, 1)
    assert m.playbook == "rollback" and m.state is MitigationState.PENDING
    plan = plan_message(bot, incident, "M1")
    assert "`Deployment/serving/checkout`: revision 3 → *2 (restored as 4)*" in text_of(plan)
    assert set(buttons(plan)) == {"fb_mit_approve", "fb_mit_reject"}
    assert (
        kube.get("deployments", "checkout", "serving")["spec"]["template"]["spec"]["containers"][0]["image"]
        == IMAGES[-1]
    )


async def test_hours_are_checked_and_a_later_look_finds_only_the_split_pool(bot: Harness, kube: KubeStandIn) -> None:
    incident = await scoped(bot)
    ack = await bot.run("changes soon", user="UALICE", channel=incident.channel_id)
    assert "Give the hours to look back" in str(ack)
    bot.clock.advance(hours=7)
    shown = text_of(await changes(bot, incident, "cluster=prod"))
    assert "last 6 h" in shown and "rolled out" not in shown and "synced" not in shown
    assert "Newest (appeared before the window)" in shown, "a pool still split is flagged however old the split"
    assert "serves no HelmRelease" in shown


async def test_a_flux_revision_and_a_cordon_capped_at_the_request_limit(bot: Harness, kube: KubeStandIn) -> None:
    incident = await scoped(bot)
    kube.add_kustomization("checkout")

    def applied(k: dict[str, Any]) -> None:
        k["spec"]["targetNamespace"] = "serving"
        ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied"}
        k["status"] = {
            "lastAppliedRevision": "main@sha1:feed123",
            "conditions": [ready | {"lastTransitionTime": ago(hours=1)}],
        }

    kube.change("kustomizations", "checkout", "flux-system", applied)
    kube.failures.pop(("list", "helmreleases"))  # served in this test
    kube.add_helmrelease("checkout")
    release = {"name": "checkout", "namespace": "serving", "version": 7, "status": "deployed"}
    release |= {"chartName": "checkout", "chartVersion": "1.4.2", "lastDeployed": ago(minutes=30)}
    kube.change("helmreleases", "checkout", "flux-system", lambda h: h.update(status={"history": [release]}))
    kube.add_node("h100-old-0", pool="h100", node_info={"osImage": OLD_OS})
    backdate(kube, "nodes", "h100-old-0", "", days=5)
    for n in range(12):
        kube.add_node(f"h100-new-{n:02}", pool="h100", node_info={"osImage": NEW_OS, "kernelVersion": "6.6.0+"})
    reply = await changes(bot, incident)
    shown = text_of(reply)
    assert "Kustomization `flux-system/checkout` synced to `main@sha1:feed123`" in shown
    assert "HelmRelease `flux-system/checkout` synced to `checkout@1.4.2`" in shown, "helm-controller v2's history"
    assert shown.index("checkout@1.4.2") < shown.index("feed123"), "newest first"
    assert "Pool `h100` is split" in shown and f"12 node(s) on {NEW_OS}, kubelet v1.31.1, kernel 6.6.0+" in shown
    assert "The cordon button names the first 10 of 12 nodes" in shown
    sent = values(reply)
    assert any('"pause-sync"' in v and "kustomization=checkout namespace=flux-system" in v for v in sent)
    cordon = next(v for v in sent if '"cordon"' in v and "h100" in v)
    assert "h100-new-09" in cordon and "h100-new-10" not in cordon and "h100-old" not in cordon
