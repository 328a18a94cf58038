"""How drain's evictions run, against the Kubernetes stand-in through the real adapter: PodDisruptionBudget waits
that clear or run out without holding up the other evictions, `drain.concurrency` capping the calls in flight, a node
whose cordon failed keeping its pods, pods already gone and refusals that are not retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.config import DrainLimits, IncidentConfig, MitigationConfig
from bot.core.playbook import Outcome, PlaybookRegistry
from playbooks import discover
from tests.kube_rules import BY_PLURAL
from tests.kube_standin import KubeRequest, KubeStandIn
from tests.test_playbook_drain import PDB_429, name, plan_for, pod_on, seed, waiting


async def test_a_node_whose_cordon_failed_keeps_its_pods(kube: KubeStandIn, cluster: KubeCluster) -> None:
    """kubectl drain stops for a node it could not cordon: evicting its pods would let them land on it again."""
    seed(kube)
    web1 = name(pod_on(kube, "web", "a100-1"))
    db3 = name(pod_on(kube, "db", "a100-3"))

    def cordon_a100_1(r: KubeRequest) -> bool:
        return r.name == "a100-1" and r.query.get("dryRun") != "All"

    kube.fail("patch", "nodes", 500, message="etcdserver: leader changed", when=cordon_a100_1)
    playbook, plan = await plan_for(waiting(0.2), cluster, "nodes=a100-1,a100-3")
    kube.change("poddisruptionbudgets", "db", "data", lambda p: p["spec"].update(maxUnavailable=1))
    results = await playbook.run(cluster, plan)
    by_name = {r.target.name: r for r in results}
    assert by_name["a100-1"].outcome is Outcome.FAILED and by_name["a100-3"].outcome is Outcome.DONE
    assert (by_name[web1].outcome, by_name[web1].message) == (
        Outcome.FAILED,
        "not attempted: Node/a100-1 did not succeed",
    )
    assert by_name[db3].outcome is Outcome.DONE
    assert {r.name for r in kube.calls("create", "pods/eviction")} == {db3}
    assert web1 in {name(p) for p in kube.all("pods")}


def on_one_node(kube: KubeStandIn) -> None:
    """Three nodes of a pool; on n-0 two db pods whose budget allows no disruption, and one web pod none covers."""
    for n in range(3):
        kube.add_node(f"n-{n}", pool="p")
    kube.add_deployment("db", replicas=2, nodes=["n-0", "n-0"])
    kube.add_pdb("db", match_labels={"app": "db"}, max_unavailable=0)
    kube.add_deployment("web", replicas=1, nodes=["n-0"])


async def test_pods_waiting_out_a_budget_do_not_hold_up_the_others(kube: KubeStandIn, cluster: KubeCluster) -> None:
    on_one_node(kube)
    registry = discover(
        IncidentConfig(
            mitigation=MitigationConfig(drain=DrainLimits(pdb_wait_seconds=1.5, retry_seconds=0.05, concurrency=1))
        )
    )
    playbook, plan = await plan_for(registry, cluster, "nodes=n-0")
    web = name(pod_on(kube, "web", "n-0"))
    assert [c.target.name for c in plan.changes][-1] == web, "the free pod comes after the two the budget holds"
    run = asyncio.create_task(playbook.run(cluster, plan))
    try:
        async with asyncio.timeout(1.0):  # well before the held pods' 1.5 s are up
            # The stand-in has no event to wait on: poll its store until the free pod is evicted.
            while web in {name(p) for p in kube.all("pods")}:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert not run.done(), "the held pods are still being retried"
    except BaseException:
        run.cancel()
        raise
    results = await run
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.FAILED, Outcome.FAILED, Outcome.DONE]
    assert all("blocked by PodDisruptionBudget default/db" in r.message for r in results[1:3])


async def test_drain_concurrency_caps_the_eviction_calls_in_flight(kube: KubeStandIn, cluster: KubeCluster) -> None:
    for n in range(3):
        kube.add_node(f"n-{n}", pool="p")
    kube.add_deployment("web", replicas=6, nodes=["n-0"])
    kube.delay("create", "pods/eviction", 0.2)
    drain = DrainLimits(concurrency=2)
    playbook, plan = await plan_for(
        discover(IncidentConfig(mitigation=MitigationConfig(drain=drain))), cluster, "nodes=n-0"
    )
    started = time.monotonic()
    results = await playbook.run(cluster, plan)
    assert {r.outcome for r in results} == {Outcome.DONE} and len(results) == 7
    assert time.monotonic() - started >= 3 * 0.2, "six evictions, two at a time, each answered after 0.2 s"


async def replacement_pod(kube: KubeStandIn) -> None:
    """The db deployment's replacement comes up Ready elsewhere: the budget now has a disruption to spare."""
    rs = pod_on(kube, "db", "a100-3")["metadata"]["ownerReferences"][0]["name"]
    labels = pod_on(kube, "db", "a100-3")["metadata"]["labels"]
    kube.add_pod("db-replacement", "data", node="cpu-0", labels=labels, owner=("ReplicaSet", rs))


async def budget_lowered(kube: KubeStandIn) -> None:
    """Someone relaxes the budget with kubectl edit: maxUnavailable 0 becomes 1."""
    kube.change("poddisruptionbudgets", "db", "data", lambda p: p["spec"].update(maxUnavailable=1))


@pytest.mark.parametrize("relief", [replacement_pod, budget_lowered])
async def test_an_eviction_a_budget_refuses_goes_through_once_the_budget_allows_it(
    kube: KubeStandIn, cluster: KubeCluster, relief: Callable[[KubeStandIn], Awaitable[None]]
) -> None:
    seed(kube)
    db0 = name(pod_on(kube, "db", "a100-0"))
    playbook, plan = await plan_for(waiting(10), cluster, "nodes=a100-3")
    db3 = name(pod_on(kube, "db", "a100-3"))
    assert [c.target.name for c in plan.changes] == ["a100-3", db3]

    async def relieve_after_refusals() -> None:
        async with asyncio.timeout(5):
            # The stand-in has no event to wait on: poll its request log until the drain has been refused thrice.
            while len([r for r in kube.calls("create", "pods/eviction") if r.status == 429]) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await relief(kube)

    helper = asyncio.create_task(relieve_after_refusals())
    results = await playbook.run(cluster, plan)
    await helper
    assert [(r.target.name, r.outcome) for r in results] == [("a100-3", Outcome.DONE), (db3, Outcome.DONE)]
    statuses = [r.status for r in kube.calls("create", "pods/eviction")]
    assert statuses[:3] == [429, 429, 429] and statuses[-1] == 201
    assert db3 not in {name(p) for p in kube.all("pods")} and db0 in {name(p) for p in kube.all("pods")}


async def test_a_budget_that_never_allows_it_fails_the_pod_naming_the_budget(
    kube: KubeStandIn, cluster: KubeCluster
) -> None:
    seed(kube)
    playbook, plan = await plan_for(waiting(0.3, retry_seconds=0.05), cluster, "nodes=a100-3")
    db3 = name(pod_on(kube, "db", "a100-3"))
    started = time.monotonic()
    node, pod = await playbook.run(cluster, plan)
    elapsed = time.monotonic() - started
    assert node.outcome is Outcome.DONE and pod.outcome is Outcome.FAILED
    assert pod.message == (
        f"blocked by PodDisruptionBudget data/db (0 disruptions allowed) for 0.3 s: prod: Pod/data/{db3}: {PDB_429}"
    )
    assert 0.3 <= elapsed < 3
    assert 2 <= len(kube.calls("create", "pods/eviction")) <= 8, "retried every 0.05 s for 0.3 s, no faster"
    assert db3 in {name(p) for p in kube.all("pods")} and kube.calls("delete") == []


async def test_a_pod_already_gone_is_already_and_other_refusals_fail_at_once(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    playbook, plan = await plan_for(registry, cluster, "nodes=a100-2")
    web2 = pod_on(kube, "web", "a100-2")
    kube.remove(BY_PLURAL["pods"], web2, orphan=False)  # its owner scaled it away after the plan
    assert [r.outcome for r in await playbook.run(cluster, plan)] == [Outcome.DONE, Outcome.ALREADY]
    kube.forbid("create", "pods/eviction")
    playbook, plan = await plan_for(registry, cluster, "nodes=a100-1")
    started = time.monotonic()
    node, pod = await playbook.run(cluster, plan)
    assert node.outcome is Outcome.DONE and pod.outcome is Outcome.FAILED
    assert '403 Forbidden: pods "' in pod.message and 'cannot create resource "pods/eviction"' in pod.message
    assert time.monotonic() - started < 5 and len(kube.calls("create", "pods/eviction")) == 2, "one try each"
