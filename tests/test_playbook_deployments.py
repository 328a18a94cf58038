"""pause-rollout, resume-rollout and scale against the Kubernetes stand-in, through the real adapter, and what every
Deployment playbook shares (parameters, a missing Deployment, denials, the undo of a write whose outcome is unknown):
plans and their facts, guards against concurrent writes, dry runs, refusals, runs and their undo. Rollback's own
tests are in test_playbook_rollback, with the helpers here."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.config import IncidentConfig, MitigationConfig, ScaleLimits
from bot.core.errors import ClusterError, UsageError
from bot.core.playbook import Outcome, Plan, Playbook, PlaybookRegistry, Result
from playbooks import discover
from playbooks._deployments import label_selector
from tests.kube_http import revisions
from tests.kube_select import parse_label_selector, selector_requirements
from tests.kube_standin import KubeStandIn

V1, V2, V3, V4 = (f"registry.example.com/app:v{n}" for n in range(1, 5))
HISTORY = [V1, V2, V3]
ALICE = "alice@example.com"
USAGES = {
    "rollback": "mitigate rollback deployment=<name> [revision=N] [namespace=default] [cluster=<context>]",
    "pause-rollout": "mitigate pause-rollout deployment=<name> [namespace=default] [cluster=<context>]",
    "resume-rollout": "mitigate resume-rollout deployment=<name> [namespace=default] [cluster=<context>]",
    "scale": "mitigate scale deployment=<name> replicas=N [namespace=default] [cluster=<context>]",
}


async def planned(registry: PlaybookRegistry, cluster: KubeCluster, name: str, text: str) -> tuple[Playbook, Plan]:
    """Parse, plan and dry-run, as a request does before it is offered for approval."""
    playbook, params = registry.parse(name, text)
    return playbook, await playbook.check(cluster, await playbook.plan(cluster, params, cluster_name="prod"))


async def undo(
    registry: PlaybookRegistry, cluster: KubeCluster, playbook: Playbook, plan: Plan, results: list[Result]
) -> tuple[Plan, list[Result]]:
    """Plan and run the playbook's undo with the parameters it gave for what it did."""
    params = playbook.undo_params(plan, results)
    if params is None or playbook.undo_with is None:
        raise AssertionError(f"{playbook.name} gave no undo for {results}")
    reverse = registry.get(playbook.undo_with)
    back = await reverse.plan(cluster, reverse.params.model_validate(params), cluster_name="prod")
    return back, await reverse.run(cluster, back)


def deployment(kube: KubeStandIn, name: str = "web", namespace: str = "default") -> dict[str, Any]:
    return kube.get("deployments", name, namespace)


def image(kube: KubeStandIn, name: str = "web") -> str:
    return str(deployment(kube, name)["spec"]["template"]["spec"]["containers"][0]["image"])


def outcomes(results: list[Result]) -> list[Outcome]:
    return [r.outcome for r in results]


# ---- parameters ------------------------------------------------------------------------------------------------


async def test_deployment_playbooks_are_registered_with_their_undo(registry: PlaybookRegistry) -> None:
    found = {p.name: (p.undo_with, p.lasting, bool(p.summary)) for p in registry if p.name in USAGES}
    assert found == {
        "rollback": ("rollback", False, True),
        "pause-rollout": ("resume-rollout", True, True),
        "resume-rollout": ("pause-rollout", False, True),
        "scale": ("scale", True, True),
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("rollback", "", "missing deployment"),
        ("rollback", "deployment=web revision=0", "revision: Input should be greater than or equal to 1"),
        ("rollback", "deployment=web revision=two", "revision: Input should be a valid integer"),
        ("scale", "deployment=web", "missing replicas"),
        ("scale", "deployment=web replicas=-1", "replicas: Input should be greater than or equal to 0"),
        ("pause-rollout", "deployment=../nodes/x", r"deployment: '../nodes/x' is not a deployment name \(lowercase"),
        ("resume-rollout", "deployment=web namespace=Prod", "namespace: 'Prod' is not a namespace name"),
        ("resume-rollout", "deployment=web replicas=2", "unknown parameter 'replicas'"),
    ],
)
async def test_a_mistake_gets_the_usage_line(registry: PlaybookRegistry, name: str, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        registry.parse(name, text)
    assert f"Usage: `/incident {USAGES[name]}`" in str(caught.value)


@pytest.mark.parametrize(("name", "extra"), [(n, " replicas=2" if n == "scale" else "") for n in USAGES])
async def test_a_missing_deployment_is_named_with_its_cluster(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry, name: str, extra: str
) -> None:
    kube.add_deployment("web")
    playbook, params = registry.parse(name, f"deployment=web namespace=payments{extra}")
    with pytest.raises(UsageError, match=r"^No Deployment payments/web in cluster prod\.$"):
        await playbook.plan(cluster, params, cluster_name="prod")


def test_the_replicaset_query_selects_what_the_deployment_selector_does() -> None:
    exprs = [("track", "In", ["stable", "canary"]), ("legacy", "NotIn", ["yes"]), ("team", "Exists", [])]
    exprs += [("gone", "DoesNotExist", [])]
    selector: dict[str, Any] = {"matchLabels": {"tier": "api", "app": "web"}}
    selector["matchExpressions"] = [{"key": k, "operator": op, "values": v} for k, op, v in exprs]
    query = label_selector(selector)
    assert query == "app=web,tier=api,track in (canary,stable),legacy notin (yes),team,!gone"
    assert sorted(parse_label_selector(query)) == sorted(selector_requirements(selector))


async def test_a_denied_permission_is_named(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", images_by_revision=HISTORY)
    kube.forbid("patch", "deployments", user=ALICE)
    playbook, plan = await planned(registry, cluster, "rollback", "deployment=web")
    assert plan.dry_run == [], "firebreak's own account may patch; the dry run is not impersonated"
    (result,) = await playbook.run(cluster, plan, as_user=ALICE)
    assert result.outcome is Outcome.FAILED and "403 Forbidden" in result.message
    assert f'User "{ALICE}" cannot patch resource "deployments" in API group "apps"' in result.message
    assert image(kube) == V3
    kube.forbid("patch", "deployments")
    _, paused = await planned(registry, cluster, "pause-rollout", "deployment=web")
    (refusal,) = paused.dry_run
    assert 'User "system:serviceaccount:firebreak:firebreak" cannot patch resource "deployments"' in refusal
    kube.forbid("list", "replicasets")
    rollback, params = registry.parse("rollback", "deployment=web")
    with pytest.raises(ClusterError, match='cannot list resource "replicasets" in API group "apps"'):
        await rollback.plan(cluster, params, cluster_name="prod")


# ---- pause-rollout and resume-rollout --------------------------------------------------------------------------


async def test_pause_holds_a_deploy_and_resume_rolls_it_out(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=3)
    pause, plan = await planned(registry, cluster, "pause-rollout", "deployment=web")
    (change,) = plan.changes
    assert (change.before, change.after) == ({"paused": "no"}, {"paused": "yes"})
    assert change.context == {"replicas": "3", "updated": "3", "available": "3"}
    assert not change.noop and plan.dry_run == []
    assert [len(kube.calls("get")), len(kube.calls("list"))] == [1, 0], "one GET is the whole plan"
    assert "paused" not in deployment(kube)["spec"], "the dry run changed nothing"
    results = await pause.run(cluster, plan, as_user=ALICE)
    assert outcomes(results) == [Outcome.DONE] and deployment(kube)["spec"]["paused"] is True

    _, again = await planned(registry, cluster, "pause-rollout", "deployment=web")
    assert again.changes[0].noop and again.notes == ["Deployment default/web is paused already."]
    assert outcomes(await pause.run(cluster, again)) == [Outcome.ALREADY]

    kube.change(
        "deployments", "web", "default", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=V2)
    )
    assert len(kube.replicasets_of("web")) == 1 and image(kube) == V2, "the deploy is held"
    assert pause.undo_params(plan, results) == {"deployment": "web", "namespace": "default", "cluster": "prod"}
    resumed, reversed_ = await undo(registry, cluster, pause, plan, results)
    assert resumed.changes[0].before == {"paused": "yes"}
    assert resumed.changes[0].context == {"replicas": "3", "updated": "0", "available": "3"}
    assert resumed.notes == [
        "Only 0 of 3 replicas run the current pod template. Resuming rolls it out to the rest now."
    ]
    assert outcomes(reversed_) == [Outcome.DONE]
    assert "paused" not in deployment(kube)["spec"] and revisions(kube, "web") == [("1", 0), ("2", 3)]

    resume = registry.get("resume-rollout")
    _, idle = await planned(registry, cluster, "resume-rollout", "deployment=web")
    assert idle.changes[0].noop and idle.notes == ["Deployment default/web is not paused."]
    assert resume.undo_params(idle, await resume.run(cluster, idle)) is None


async def test_replica_counts_moving_do_not_ask_for_a_new_approval_but_a_pause_does(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """Approval re-plans and acts only if the fingerprint is unchanged: replicas, updated and available move by
    themselves (an autoscaler, pods failing), so they are shown, not approved; whether it is paused is approved."""
    kube.add_deployment("web", replicas=3)
    _, plan = await planned(registry, cluster, "pause-rollout", "deployment=web")
    kube.change("deployments", "web", "default", lambda d: d["spec"].update(replicas=5))  # an autoscaler
    kube.change("deployments", "web", "default", lambda d: d["status"].update(availableReplicas=2))
    _, again = await planned(registry, cluster, "pause-rollout", "deployment=web")
    assert again.changes[0].context["replicas"] == "5" and again.changes[0].context != plan.changes[0].context
    assert again.fingerprint == plan.fingerprint
    kube.change("deployments", "web", "default", lambda d: d["spec"].update(paused=True))  # someone paused it
    _, paused = await planned(registry, cluster, "pause-rollout", "deployment=web")
    assert paused.fingerprint != plan.fingerprint
    _, resume = await planned(registry, cluster, "resume-rollout", "deployment=web")
    kube.change("deployments", "web", "default", lambda d: d["spec"].update(replicas=2))
    _, resume_again = await planned(registry, cluster, "resume-rollout", "deployment=web")
    assert resume_again.fingerprint == resume.fingerprint


async def test_resume_is_undone_by_pausing_again(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", paused=True)
    resume, plan = await planned(registry, cluster, "resume-rollout", "deployment=web")
    assert plan.notes == [] and plan.changes[0].after["paused"] == "no"
    results = await resume.run(cluster, plan)
    assert "paused" not in deployment(kube)["spec"]
    back, reversed_ = await undo(registry, cluster, resume, plan, results)
    assert back.playbook == "pause-rollout" and outcomes(reversed_) == [Outcome.DONE]
    assert deployment(kube)["spec"]["paused"] is True


# ---- scale -----------------------------------------------------------------------------------------------------


async def test_scale_changes_replicas_and_its_undo_restores_them(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=2)
    scale, plan = await planned(registry, cluster, "scale", "deployment=web replicas=5")
    (change,) = plan.changes
    assert (change.before, change.after, change.noop) == ({"replicas": "2"}, {"replicas": "5"}, False)
    assert plan.notes == ["Now 2 of 2 replicas available, 2 on the current template."]
    assert plan.refused == [] and plan.dry_run == [] and len(kube.calls("get")) == 1
    assert deployment(kube)["spec"]["replicas"] == 2, "the dry run changed nothing"
    results = await scale.run(cluster, plan, as_user=ALICE)
    assert outcomes(results) == [Outcome.DONE] and deployment(kube)["spec"]["replicas"] == 5
    assert revisions(kube, "web") == [("1", 5)]
    undo_params = {"deployment": "web", "namespace": "default", "replicas": 2, "cluster": "prod"}
    assert scale.undo_params(plan, results) == undo_params
    _, reversed_ = await undo(registry, cluster, scale, plan, results)
    assert outcomes(reversed_) == [Outcome.DONE] and deployment(kube)["spec"]["replicas"] == 2


async def test_scale_is_refused_over_the_max_step_with_the_numbers(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=2)
    _, plan = await planned(registry, cluster, "scale", "deployment=web replicas=13")
    assert plan.refused == [
        "Scaling default/web from 2 to 13 changes 11 replicas, over the limit of 10 per request; "
        "scale in steps or raise mitigation.scale.max_step."
    ]
    tight = discover(IncidentConfig(mitigation=MitigationConfig(scale=ScaleLimits(max_step=1))))
    _, down = await planned(tight, cluster, "scale", "deployment=web replicas=0")
    assert down.refused == [
        "Scaling default/web from 2 to 0 changes 2 replicas, over the limit of 1 per request; "
        "scale in steps or raise mitigation.scale.max_step."
    ]
    assert down.notes[-1] == "replicas=0: no pod of Deployment default/web will serve until it is scaled up again."
    _, step = await planned(tight, cluster, "scale", "deployment=web replicas=3")
    assert step.refused == []


async def test_scaling_to_the_current_count_is_a_no_op(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=2)
    scale, plan = await planned(registry, cluster, "scale", "deployment=web replicas=2")
    assert plan.changes[0].noop and plan.notes[-1] == "Deployment default/web has 2 replicas already."
    results = await scale.run(cluster, plan)
    assert outcomes(results) == [Outcome.ALREADY] and scale.undo_params(plan, results) is None
    assert kube.calls("patch") == []


async def test_a_concurrent_scale_is_never_overwritten(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=2)
    scale, plan = await planned(registry, cluster, "scale", "deployment=web replicas=5")
    kube.change("deployments", "web", "default", lambda d: d["metadata"].setdefault("labels", {}).update(team="x"))
    assert outcomes(await scale.run(cluster, plan)) == [Outcome.DONE], "the guard is on replicas, not any change"
    _, plan = await planned(registry, cluster, "scale", "deployment=web replicas=8")
    kube.change("deployments", "web", "default", lambda d: d["spec"].update(replicas=7))  # an autoscaler
    (result,) = await scale.run(cluster, plan)
    assert result.outcome is Outcome.FAILED
    assert result.message.startswith(
        "Deployment/default/web no longer has the 5 replicas this plan was made from (an autoscaler or a person "
        "scaled it since): nothing was written; plan again. prod: Deployment/default/web: 422 Invalid"
    )
    assert deployment(kube)["spec"]["replicas"] == 7


async def test_an_admission_policy_refusal_is_reported_as_the_api_says_it(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_deployment("web", replicas=2)
    kube.max_replicas = 4
    scale, plan = await planned(registry, cluster, "scale", "deployment=web replicas=6")
    (refusal,) = plan.dry_run
    assert "ValidatingAdmissionPolicy 'max-replicas'" in refusal and "object.spec.replicas <= 4" in refusal
    (result,) = await scale.run(cluster, plan)
    assert result.outcome is Outcome.FAILED and "no longer has" not in result.message
    assert "422 Invalid" in result.message and deployment(kube)["spec"]["replicas"] == 2


# ---- undo of a write whose outcome is unknown ------------------------------------------------------------------------


async def test_an_unknown_outcome_gets_an_undo_that_is_harmless_if_the_write_never_landed(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """A write in flight when the process died (or unanswered) may have landed: each Deployment playbook offers its
    undo, and on a Deployment the write never reached, the undo's plan has nothing to change."""
    kube.add_deployment("web", images_by_revision=HISTORY, replicas=2)
    for name, text in [
        ("pause-rollout", "deployment=web"),
        ("scale", "deployment=web replicas=4"),
        ("rollback", "deployment=web"),
    ]:
        playbook, plan = await planned(registry, cluster, name, text)
        lost = [Result(target=plan.changes[0].target, outcome=Outcome.UNKNOWN, message="in flight when it stopped")]
        back, reversed_ = await undo(registry, cluster, playbook, plan, lost)
        assert [c.noop for c in back.changes] == [True] and outcomes(reversed_) == [Outcome.ALREADY], name
    assert all(r.query == {"dryRun": "All"} for r in kube.calls("patch")), "nothing but dry runs was written"
