"""rollback against the Kubernetes stand-in, through the real adapter: the revision it restores and what else changes
with it, history and refusals, and its guard: a deploy made since the plan is refused, a status update is not."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.errors import UsageError
from bot.core.playbook import Outcome, PlaybookRegistry
from tests.kube_http import revisions
from tests.kube_standin import KubeStandIn
from tests.test_playbook_deployments import (
    ALICE,
    HISTORY,
    V1,
    V2,
    V3,
    V4,
    deployment,
    image,
    outcomes,
    planned,
    undo,
)


async def test_rollback_restores_the_previous_revision_and_its_undo_the_replaced_one(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY, replicas=2)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=web")
    (change,) = plan.changes
    assert change.before == {"revision": "3", "image app": V3}
    assert change.after == {"revision": "2 (restored as 4)", "image app": V2}
    assert not change.noop and plan.refused == [] and plan.dry_run == [] and plan.notes == []
    assert plan.params == {"deployment": "web", "namespace": "default"}
    assert [len(kube.calls("get", "deployments")), len(kube.calls("list", "replicasets"))] == [1, 1]
    assert kube.calls("list", "replicasets")[0].query["labelSelector"] == "app=web", "one LIST, by its selector"
    assert kube.calls("patch", "deployments")[0].query == {"dryRun": "All"}
    assert image(kube) == V3 and revisions(kube, "web")[-1] == ("3", 2), "the dry run changed nothing"

    results = await playbook.run(cluster, plan, as_user=ALICE)
    assert outcomes(results) == [Outcome.DONE]
    assert kube.calls("patch", "deployments")[-1].impersonated == ALICE
    assert image(kube) == V2 and revisions(kube, "web") == [("1", 0), ("3", 0), ("4", 2)]
    rolled = deployment(kube)
    assert "pod-template-hash" not in rolled["spec"]["template"]["metadata"]["labels"]
    assert rolled["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "4"}

    assert playbook.undo_params(plan, results) == {
        "deployment": "web",
        "namespace": "default",
        "revision": 3,
        "cluster": "prod",
    }, "the replaced revision keeps its number"
    back, reversed_ = await undo(registry, cluster, playbook, plan, results)
    assert (back.changes[0].before, back.changes[0].after) == (
        {"revision": "4", "image app": V2},
        {"revision": "3 (restored as 5)", "image app": V3},
    )
    assert outcomes(reversed_) == [Outcome.DONE]
    assert image(kube) == V3 and revisions(kube, "web") == [("1", 0), ("4", 0), ("5", 2)]


async def test_rollback_to_a_named_revision_shows_every_container_and_what_else_changes(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("api", "payments", images_by_revision=HISTORY)

    def deploy_v4(d: dict[str, Any]) -> None:
        spec = d["spec"]["template"]["spec"]
        spec["containers"][0] |= {"image": V4, "env": [{"name": "MODE", "value": "fast"}]}
        spec["containers"].append({"name": "proxy", "image": "envoy:1.31"})

    kube.change("deployments", "api", "payments", deploy_v4)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=api namespace=payments revision=1")
    (change,) = plan.changes
    assert change.before == {"revision": "4", "image app": V4, "image proxy": "envoy:1.31"}
    assert change.after == {"revision": "1 (restored as 5)", "image app": V1, "image proxy": "(none)"}
    assert plan.notes == ["Also restored: spec.containers[app].env, spec.containers[proxy]."]
    assert outcomes(await playbook.run(cluster, plan)) == [Outcome.DONE]
    restored = deployment(kube, "api", "payments")["spec"]["template"]["spec"]["containers"]
    assert restored == [{"name": "app", "image": V1}], "the template is replaced, not merged: the sidecar is gone"


async def test_an_unknown_revision_lists_the_ones_there_are(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY)
    kube.add_deployment("web-canary", images_by_revision=[V1, V2, V3, V4, V1], labels={"app": "web"})
    playbook, params = registry.parse("rollback", "deployment=web revision=5")
    with pytest.raises(UsageError, match=r"^Deployment default/web has no revision 5; its revisions: 1, 2, 3 \(cur"):
        await playbook.plan(cluster, params, cluster_name="prod")
    kube.add_deployment("solo")
    playbook, params = registry.parse("rollback", "deployment=solo")
    with pytest.raises(UsageError, match="No rollout history for Deployment default/solo: revision 1 is its only one"):
        await playbook.plan(cluster, params, cluster_name="prod")


async def test_rollback_of_a_paused_deployment_is_refused(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY, paused=True)
    _, plan = await planned(registry, cluster, "rollback", "deployment=web")
    assert plan.refused == ["Deployment default/web is paused: resume it first (resume-rollout), then roll back."]
    assert plan.changes[0].after == {"revision": "2 (restored as 4)", "image app": V2}, "still says what it would do"


async def test_rolling_back_to_the_current_template_is_a_no_op(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=web revision=3")
    (change,) = plan.changes
    assert change.noop and change.before == change.after == {"revision": "3", "image app": V3}
    assert plan.notes == ["The current pod template already matches revision 3: nothing to roll back."]
    results = await playbook.run(cluster, plan)
    assert outcomes(results) == [Outcome.ALREADY] and playbook.undo_params(plan, results) is None
    assert kube.calls("patch", "deployments") == [], "neither dry-run nor written"


async def test_a_deployment_changed_since_the_plan_is_never_overwritten(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=web")
    planned_generation = deployment(kube)["metadata"]["generation"]
    assert plan.changes[0].patch[0] == {"op": "test", "path": "/metadata/generation", "value": planned_generation}
    # Someone deploys v4 between the plan and its approval: rolling back to v2 now would silently drop it.
    kube.change(
        "deployments", "web", "default", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=V4)
    )
    before = deployment(kube)
    assert before["metadata"]["generation"] == planned_generation + 1, "a spec change bumps the generation"
    (result,) = await playbook.run(cluster, plan)
    assert result.outcome is Outcome.FAILED
    assert result.message.startswith(
        "Deployment/default/web changed since this plan was made (a deploy, a scale, a rollback or an annotation by "
        f"someone else: its metadata.generation is no longer {planned_generation}): nothing was written; plan "
        "again. prod: Deployment/default/web: 422 Invalid: "
    )
    assert deployment(kube) == before and image(kube) == V4
    assert playbook.undo_params(plan, [result]) is None


async def test_a_status_update_since_the_plan_does_not_stop_a_rollback(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """The deployment controller writes status all the time while pods churn: that is no conflicting deploy."""
    kube.add_deployment("web", images_by_revision=HISTORY, replicas=3)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=web")
    was = deployment(kube)["metadata"]
    kube.change("deployments", "web", "default", lambda d: d["status"].update(availableReplicas=1))
    now = deployment(kube)["metadata"]
    assert now["resourceVersion"] != was["resourceVersion"] and now["generation"] == was["generation"]
    assert outcomes(await playbook.run(cluster, plan)) == [Outcome.DONE]
    assert image(kube) == V2
