"""cordon and uncordon against the Kubernetes stand-in, through the real adapter: plans, limits, runs, undo."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.config import IncidentConfig, MitigationConfig, NodeLimits
from bot.core.errors import UsageError
from bot.core.playbook import Outcome, Plan, PlaybookRegistry, Result
from playbooks import discover
from tests.kube_rules import BY_PLURAL
from tests.kube_standin import KubeRequest, KubeStandIn


def seed(kube: KubeStandIn) -> None:
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100", ready=n != 5)
    kube.add_node("cpu-0", pool="general")


async def test_every_playbook_module_is_registered(registry: PlaybookRegistry) -> None:
    assert {p.name for p in registry} >= {"cordon", "uncordon"}
    with pytest.raises(UsageError, match="There is no playbook 'reboot'"):
        registry.get("reboot")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "name either nodes=a,b,c or pool=<name>"),
        ("nodes=a pool=b", "name either nodes=a,b,c or pool=<name>"),
        ("node=a", "unknown parameter 'node'"),
        ("nodes", "Parameters are key=value"),
    ],
)
async def test_a_mistake_gets_the_usage_line(registry: PlaybookRegistry, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        registry.parse("cordon", text)
    assert "Usage: `/incident mitigate cordon nodes=a,b | pool=<name> [cluster=<context>]`" in str(caught.value)


async def test_cordon_plan_says_what_changes_from_what_and_runs_once(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))  # cordoned already
    playbook, params = registry.parse("cordon", "nodes=a100-0,a100-1")
    plan = await playbook.check(cluster, await playbook.plan(cluster, params, cluster_name="prod"))
    assert [(c.target.name, c.before["schedulable"], c.after["schedulable"], c.noop) for c in plan.changes] == [
        ("a100-0", "yes", "no", False),
        ("a100-1", "no", "no", True),
    ]
    assert plan.refused == [] and plan.dry_run == []
    assert plan.notes == ["pool a100: 3 of 6 nodes Ready and schedulable after this."]
    assert len(kube.calls("list", "nodes")) == 1, "one LIST for the whole plan"
    assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") in (None, False), "the dry run changed nothing"
    results = await playbook.run(cluster, plan, as_user="alice@example.com")
    assert [(r.target.name, r.outcome) for r in results] == [("a100-0", Outcome.DONE), ("a100-1", Outcome.ALREADY)]
    assert kube.get("nodes", "a100-0")["spec"]["unschedulable"] is True
    assert kube.calls("patch", "nodes")[-1].impersonated == "alice@example.com"
    undo = playbook.undo_params(plan, results)
    assert undo == {"nodes": "a100-0", "missing_ok": True, "cluster": "prod"}, "uncordon exactly what it cordoned"
    uncordon, undo_params = registry.parse("uncordon", "nodes=a100-0 cluster=prod")
    reversed_ = await uncordon.run(cluster, await uncordon.plan(cluster, undo_params, cluster_name="prod"))
    assert [r.outcome for r in reversed_] == [Outcome.DONE]
    assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") in (None, False)
    assert kube.get("nodes", "a100-1")["spec"]["unschedulable"] is True, "not the one that was cordoned before"


async def test_blast_radius_limits_refuse_with_the_numbers(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    playbook, params = registry.parse("cordon", "pool=a100")
    plan = await playbook.plan(cluster, params, cluster_name="prod")
    assert "pool a100: 6 of 6 nodes is over the limit of 50% of a pool." in plan.refused
    assert "pool a100: only 0 Ready schedulable node(s) would remain; at least 1 must." in plan.refused
    tight = discover(IncidentConfig(mitigation=MitigationConfig(nodes=NodeLimits(max_nodes=2))))
    playbook, params = tight.parse("cordon", "nodes=a100-0,a100-1,a100-2")
    plan = await playbook.plan(cluster, params, cluster_name="prod")
    assert "3 nodes is over the limit of 2 per request; split it or raise the limit." in plan.refused


async def test_unknown_nodes_and_pools_are_named(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    playbook, params = registry.parse("cordon", "nodes=a100-0,gpu-99")
    with pytest.raises(UsageError, match="No such node: gpu-99"):
        await playbook.plan(cluster, params, cluster_name="prod")
    playbook, params = registry.parse("cordon", "pool=h100")
    with pytest.raises(UsageError, match=r"No nodes in pool 'h100' .*pools here: a100, general"):
        await playbook.plan(cluster, params, cluster_name="prod")


async def test_a_write_the_api_refuses_is_reported_in_its_words(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    kube.forbid("patch", "nodes")
    playbook, params = registry.parse("cordon", "nodes=a100-0")
    plan = await playbook.check(cluster, await playbook.plan(cluster, params, cluster_name="prod"))
    assert plan.dry_run and 'cannot patch resource "nodes"' in plan.dry_run[0]
    (result,) = await playbook.run(cluster, plan)
    assert result.outcome is Outcome.FAILED and "403 Forbidden" in result.message


def ready(kube: KubeStandIn, node: str, status: str) -> None:
    """The kubelet reports the node Ready, or stops (NotReady), as a flapping node does."""

    def edit(n: dict[str, Any]) -> None:
        for c in n["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = status

    kube.change("nodes", node, "", edit)


async def plan_of(registry: PlaybookRegistry, cluster: KubeCluster, name: str, text: str) -> Plan:
    playbook, params = registry.parse(name, text)
    return await playbook.plan(cluster, params, cluster_name="prod")


@pytest.mark.parametrize("name", ["cordon", "drain", "uncordon"])
async def test_a_flapping_node_does_not_ask_for_a_new_approval(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry, name: str
) -> None:
    """Approval re-plans and acts only if the fingerprint is unchanged: Ready moves by itself, so it is shown beside
    the change, not approved; whether the node is schedulable is what is approved."""
    seed(kube)
    if name == "uncordon":
        kube.change("nodes", "a100-0", "", lambda n: n["spec"].update(unschedulable=True))
    plan = await plan_of(registry, cluster, name, "nodes=a100-0")
    node = plan.changes[0]
    assert "ready" not in node.before and node.context == {"ready": "yes"}
    assert node.before == {"pool": "a100", "schedulable": "no" if name == "uncordon" else "yes"}
    ready(kube, "a100-0", "False")
    flapped = await plan_of(registry, cluster, name, "nodes=a100-0")
    assert flapped.changes[0].context == {"ready": "no"} and flapped.fingerprint == plan.fingerprint
    ready(kube, "a100-0", "True")
    kube.change("nodes", "a100-0", "", lambda n: n["spec"].update(unschedulable=name != "uncordon"))
    moved = await plan_of(registry, cluster, name, "nodes=a100-0")
    assert moved.fingerprint != plan.fingerprint, "someone else cordoned (or uncordoned) it meanwhile"


async def test_a_pool_falling_under_its_ready_minimum_still_asks_again(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """Ready is outside the fingerprint, but the limits that count Ready nodes are not: a refusal is."""
    seed(kube)
    plan = await plan_of(registry, cluster, "cordon", "nodes=a100-0,a100-1")
    for n in (2, 3, 4):
        ready(kube, f"a100-{n}", "False")
    worse = await plan_of(registry, cluster, "cordon", "nodes=a100-0,a100-1")
    assert worse.refused == ["pool a100: only 0 Ready schedulable node(s) would remain; at least 1 must."]
    assert worse.fingerprint != plan.fingerprint


async def test_cordon_and_drain_lock_each_pool_they_take_nodes_from(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """Two requests each leaving a pool its last spare Ready node must not both run: the runner locks these."""
    seed(kube)
    for n in range(3):
        kube.add_node(f"cpu-{n + 1}", pool="general")
    kube.add_node("loose-0")
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))
    assert (await plan_of(registry, cluster, "cordon", "nodes=cpu-1,a100-0")).locks == ["pool:a100", "pool:general"]
    assert (await plan_of(registry, cluster, "drain", "nodes=cpu-1,a100-0")).locks == ["pool:a100", "pool:general"]
    assert (await plan_of(registry, cluster, "cordon", "pool=general")).locks == ["pool:general"]
    assert (await plan_of(registry, cluster, "cordon", "nodes=a100-1")).locks == [], "takes nothing: it is cordoned"
    assert (await plan_of(registry, cluster, "drain", "nodes=a100-1")).locks == ["pool:a100"], "moves its pods"
    assert (await plan_of(registry, cluster, "cordon", "nodes=loose-0")).locks == ["pool:(none)"]
    assert (await plan_of(registry, cluster, "uncordon", "nodes=a100-1")).locks == [], "it gives capacity back"


async def test_an_unknown_cordon_is_undone_too(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """A cordon in flight when the process died (or unanswered) may have landed: its undo uncordons that node too,
    which writes nothing if it never did."""
    seed(kube)

    def a100_1(r: KubeRequest) -> bool:
        return r.name == "a100-1" and r.query.get("dryRun") != "All"

    kube.fail("patch", "nodes", 500, when=a100_1)
    playbook, params = registry.parse("cordon", "nodes=a100-0,a100-1,a100-2")
    plan = await playbook.plan(cluster, params, cluster_name="prod")
    results = await playbook.run(cluster, plan)
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.FAILED, Outcome.DONE]
    lost = [results[0], Result(target=results[1].target, outcome=Outcome.UNKNOWN), results[2]]
    undo = playbook.undo_params(plan, lost)
    assert undo == {"nodes": "a100-0,a100-1,a100-2", "missing_ok": True, "cluster": "prod"}
    assert playbook.undo_params(plan, results) == {"nodes": "a100-0,a100-2", "missing_ok": True, "cluster": "prod"}
    uncordon = registry.get("uncordon")
    back = await uncordon.plan(cluster, uncordon.params.model_validate(undo), cluster_name="prod")
    assert [(c.target.name, c.noop) for c in back.changes] == [("a100-0", False), ("a100-1", True), ("a100-2", False)]


async def test_an_undo_skips_nodes_deleted_since_but_a_typed_name_must_exist(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    cordon, params = registry.parse("cordon", "nodes=a100-0,a100-1")
    plan = await cordon.plan(cluster, params, cluster_name="prod")
    undo = cordon.undo_params(plan, await cordon.run(cluster, plan))
    assert undo is not None
    kube.remove(BY_PLURAL["nodes"], kube.get("nodes", "a100-1"), orphan=False)  # scaled away during the incident
    uncordon = registry.get("uncordon")
    params = uncordon.params.model_validate(undo)
    back = await uncordon.plan(cluster, params, cluster_name="prod")
    assert [c.target.name for c in back.changes] == ["a100-0"]
    assert back.notes == ["Node a100-1 no longer exists; nothing to do for it."]
    assert back.params == {"nodes": ("a100-0", "a100-1"), "missing_ok": True, "cluster": "prod"}
    assert [r.outcome for r in await uncordon.run(cluster, back)] == [Outcome.DONE]
    assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") in (None, False)
    _, typed = registry.parse("uncordon", "nodes=a100-0,a100-1")
    with pytest.raises(UsageError, match="No such node: a100-1"):
        await uncordon.plan(cluster, typed, cluster_name="prod")
    assert "missing_ok" not in uncordon.usage, "an undo's parameter, not a person's"
