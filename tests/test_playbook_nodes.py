"""cordon and uncordon against the Kubernetes stand-in, through the real adapter: plans, limits, runs, undo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.kubernetes import KubeCluster, KubeClusters
from bot.core.config import IncidentConfig, MitigationConfig, NodeLimits
from bot.core.errors import UsageError
from bot.core.playbook import Outcome, PlaybookRegistry
from playbooks import discover
from tests.kube_standin import KubeStandIn


@pytest.fixture
async def cluster(kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod"))
    yield await clusters.get("prod")
    await clusters.close()


@pytest.fixture
def registry() -> PlaybookRegistry:
    return discover(IncidentConfig())


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
    assert undo == {"nodes": "a100-0", "cluster": "prod"}, "uncordon exactly what this run cordoned"
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
