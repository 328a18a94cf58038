"""drain against the Kubernetes stand-in, through the real adapter: what a plan evicts and leaves, the three LISTs it
costs, what its approval covers, dry runs, limits and undo. How its evictions run (budgets waited out, the cap on
calls, pods already gone) is in test_playbook_drain_runs, with the helpers here."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.config import DrainLimits, IncidentConfig, MitigationConfig, NodeLimits
from bot.core.errors import UsageError
from bot.core.playbook import Outcome, Playbook, PlaybookRegistry
from playbooks import discover
from playbooks.drain import selects
from tests import kube_objects as ko
from tests.kube_rules import BY_PLURAL
from tests.kube_standin import KubeStandIn

PDB_429 = "429 TooManyRequests: Cannot evict pod as it would violate the pod's disruption budget."


def waiting(pdb_wait_seconds: float, retry_seconds: float = 0.02, **nodes: Any) -> PlaybookRegistry:
    drain = DrainLimits(pdb_wait_seconds=pdb_wait_seconds, retry_seconds=retry_seconds)
    return discover(IncidentConfig(mitigation=MitigationConfig(drain=drain, nodes=NodeLimits(**nodes))))


def seed(kube: KubeStandIn) -> None:
    """Six a100 nodes (a100-5 not Ready) and a general one; web (3 replicas, a budget allowing 1) on a100-0..2,
    db (2 replicas, a budget allowing none) on a100-0 and a100-3, an agent, a static pod, a finished job, a cache
    with an emptyDir volume, and api on the general pool that no drain here touches."""
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100", ready=n != 5)
    kube.add_node("cpu-0", pool="general")
    kube.add_deployment("web", replicas=3, nodes=["a100-0", "a100-1", "a100-2"])
    kube.add_pdb("web", match_labels={"app": "web"}, min_available=2)
    kube.add_deployment("db", "data", replicas=2, nodes=["a100-0", "a100-3"])
    kube.add_pdb("db", "data", match_labels={"app": "db"}, max_unavailable=0)
    kube.add_deployment("api", replicas=2, nodes=["cpu-0"])
    kube.add_pod("fluentd-a100-0", "kube-system", node="a100-0", owner=("DaemonSet", "fluentd"))
    kube.add_pod("kube-proxy-a100-0", "kube-system", node="a100-0", annotations={"kubernetes.io/config.mirror": "1"})
    kube.add_pod("report-1", node="a100-1", phase="Succeeded", ready=False, owner=("Job", "report"))
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "cache", "uid": ko.new_uid(), "controller": True}
    cache = ko.pod(
        "cache-0",
        "default",
        node="a100-0",
        labels={"app": "cache"},
        phase="Running",
        ready=True,
        owners=[owner],
        containers=[{"name": "redis", "image": "redis:7"}],
    )
    cache["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    kube.seed("pods", cache)


def pod_on(kube: KubeStandIn, app: str, node: str) -> dict[str, Any]:
    (found,) = [
        p
        for p in kube.all("pods")
        if (p["metadata"].get("labels") or {}).get("app") == app and p["spec"].get("nodeName") == node
    ]
    return found


def name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["name"])


async def plan_for(registry: PlaybookRegistry, cluster: KubeCluster, text: str) -> tuple[Playbook, Any]:
    playbook, params = registry.parse("drain", text)
    return playbook, await playbook.plan(cluster, params, cluster_name="prod")


async def test_drain_is_registered_with_its_usage_line_and_concurrency(registry: PlaybookRegistry) -> None:
    with pytest.raises(UsageError, match="name either nodes=a,b,c or pool=<name>") as caught:
        registry.parse("drain", "cluster=prod")
    assert "Usage: `/incident mitigate drain nodes=a,b | pool=<name> [cluster=<context>]`" in str(caught.value)
    drain = registry.get("drain")
    assert (drain.undo_with, drain.lasting) == ("uncordon", True)
    assert drain.concurrency == 200, "the runner starts every eviction; drain.concurrency caps the API calls"


async def test_plan_cordons_then_evicts_what_would_come_back_and_leaves_the_rest(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))  # cordoned already
    _, plan = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    web0, web1, db0 = pod_on(kube, "web", "a100-0"), pod_on(kube, "web", "a100-1"), pod_on(kube, "db", "a100-0")
    assert [(c.target.kind, c.target.namespace, c.target.name, c.phase, c.noop) for c in plan.changes] == [
        ("Node", None, "a100-0", 0, False),
        ("Node", None, "a100-1", 0, True),
        ("Pod", "data", name(db0), 1, False),
        ("Pod", "default", "cache-0", 1, False),
        ("Pod", "default", name(web0), 1, False),
        ("Pod", "default", name(web1), 1, False),
    ], "DaemonSet, mirror and finished pods are left; api on cpu-0 is not touched"
    by_name = {c.target.name: c for c in plan.changes}
    web_rs = web0["metadata"]["ownerReferences"][0]["name"]
    assert by_name[name(web0)].before == {"node": "a100-0", "owner": f"ReplicaSet/{web_rs}", "evicted": "no"}
    assert by_name[name(web0)].context == {"budget": "default/web (1 disruption allowed)"}
    assert by_name[name(web0)].after["evicted"] == "yes" and by_name[name(web0)].evict
    assert by_name[name(db0)].context["budget"] == "data/db (0 disruptions allowed)"
    assert by_name["cache-0"].before == {"node": "a100-0", "owner": "StatefulSet/cache", "evicted": "no"}
    assert by_name["cache-0"].context == {"budget": "none"}
    assert plan.refused == []
    assert plan.notes == [
        "pool a100: 3 of 6 nodes Ready and schedulable after this.",
        "Left in place, as kubectl drain leaves them: 1 DaemonSet pod, 1 finished pod, 1 mirror (static) pod.",
        "Local data in emptyDir volumes is lost when these pods are evicted: default/cache-0.",
        "PodDisruptionBudget data/db: this drain evicts 1 pod it covers but allows 0 disruptions now: evictions "
        "past that wait for replacements to be Ready, each for up to 300 s, then fail.",
        "PodDisruptionBudget default/web: this drain evicts 2 pods it covers but allows 1 disruption now: evictions "
        "past that wait for replacements to be Ready, each for up to 300 s, then fail.",
    ]


async def test_a_plan_costs_three_lists_however_many_nodes(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    _, plan = await plan_for(registry, cluster, "nodes=a100-0,a100-1,a100-3")
    assert len(plan.writes) == 3 + 5
    assert sorted((r.verb, r.path, str(r.query)) for r in kube.requests) == [
        ("list", "/api/v1/nodes", "{}"),
        ("list", "/api/v1/pods", "{}"),
        ("list", "/apis/policy/v1/poddisruptionbudgets", "{}"),
    ], "one LIST each, cluster-wide, no GET per pod"


async def test_pods_no_controller_would_bring_back_refuse_the_plan(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    kube.add_pod("debug-shell", node="a100-0")
    kube.add_pod("scratch", "ml", node="a100-1")
    kube.add_pod("elsewhere", node="cpu-0")
    _, plan = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    assert plan.refused == [
        "2 pods with no controller would not come back once evicted: default/debug-shell, ml/scratch. Cordon "
        "instead, or delete those pods by hand (they are gone for good) and drain again."
    ], "the mirror pod has no controller either, but the kubelet owns it: it is left, not refused"
    assert "debug-shell" not in {c.target.name for c in plan.changes}


async def test_a_pod_two_budgets_cover_is_named_before_the_api_refuses_it(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    kube.add_pdb("web-too", match_labels={"app": "web"}, max_unavailable="50%")
    playbook, plan = await plan_for(registry, cluster, "nodes=a100-2")
    web2 = name(pod_on(kube, "web", "a100-2"))
    assert plan.notes[-1] == (
        "The Eviction API refuses pods that more than one PodDisruptionBudget covers (500), so these stay until the "
        f"budgets are fixed: default/{web2} (web, web-too)."
    )
    started = time.monotonic()
    node, pod = await playbook.run(cluster, plan)
    assert node.outcome is Outcome.DONE and pod.outcome is Outcome.FAILED
    assert "500" in pod.message and "more than one PodDisruptionBudget" in pod.message
    assert time.monotonic() - started < 5 and len(kube.calls("create", "pods/eviction")) == 1, "a 500 is not retried"


async def test_a_run_cordons_first_then_evicts_and_undo_uncordons_only_what_it_cordoned(
    kube: KubeStandIn, cluster: KubeCluster
) -> None:
    seed(kube)
    kube.change("nodes", "a100-2", "", lambda n: n["spec"].update(unschedulable=True))
    web1, web2 = name(pod_on(kube, "web", "a100-1")), name(pod_on(kube, "web", "a100-2"))
    playbook, plan = await plan_for(waiting(0.2), cluster, "nodes=a100-1,a100-2")
    results = await playbook.run(cluster, plan, as_user="alice@example.com")
    nodes, pods = results[:2], results[2:]
    assert [(r.target.name, r.outcome) for r in nodes] == [("a100-1", Outcome.DONE), ("a100-2", Outcome.ALREADY)]
    assert sorted((r.outcome, r.target.name) for r in pods) in (
        [(Outcome.DONE, web1), (Outcome.FAILED, web2)],
        [(Outcome.DONE, web2), (Outcome.FAILED, web1)],
    ), "the budget allowed one of the two web pods; which one is the race the evictions ran"
    evicted, kept = (r.target.name for r in sorted(pods, key=lambda r: r.outcome))
    assert next(r.message for r in pods if r.outcome is Outcome.FAILED).startswith(
        "blocked by PodDisruptionBudget default/web (0 disruptions allowed) for 0.2 s: "
    )
    writes = [r for r in kube.requests if r.verb in ("patch", "create")]
    assert [(r.verb, r.resource) for r in writes] == [("patch", "nodes")] + [("create", "pods/eviction")] * (
        len(writes) - 1
    ), "the cordon finished before the first eviction"
    assert {r.impersonated for r in writes} == {"alice@example.com"}
    assert kube.calls("delete") == [], "never a delete, not even for the pod the budget kept"
    assert kept in {name(p) for p in kube.all("pods")} and evicted not in {name(p) for p in kube.all("pods")}
    assert playbook.undo_params(plan, results) == {"nodes": "a100-1", "missing_ok": True, "cluster": "prod"}
    assert playbook.undo_params(plan, [r for r in results if r.target.kind == "Pod"]) is None


async def test_pods_coming_and_going_ask_for_no_new_approval_and_each_needs_its_node_cordoned(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """The approval is for the nodes: the run evicts what is on them when it runs, as kubectl drain does."""
    seed(kube)
    _, plan = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    evictions = [c for c in plan.changes if c.evict]
    assert evictions and all(not c.gating for c in evictions)
    assert [c.needs for c in evictions] == [(f"Node/{c.before['node']}",) for c in evictions]
    assert all(c.gating and c.needs == () for c in plan.changes if not c.evict)
    kube.remove(BY_PLURAL["pods"], pod_on(kube, "web", "a100-1"), orphan=False)  # its owner scaled it away
    rs = pod_on(kube, "web", "a100-0")["metadata"]["ownerReferences"][0]["name"]
    kube.add_pod("web-new", node="a100-0", labels={"app": "web"}, owner=("ReplicaSet", rs))
    _, later = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    assert {c.target.name for c in later.changes} != {c.target.name for c in plan.changes}
    assert later.fingerprint == plan.fingerprint
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))
    _, cordoned = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    assert cordoned.fingerprint != plan.fingerprint, "a node's state is what was approved"


async def test_a_dry_run_asks_each_write_once_and_changes_nothing(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    seed(kube)
    before = {name(p) for p in kube.all("pods")}
    playbook, plan = await plan_for(registry, cluster, "nodes=a100-0,a100-1")
    started = time.monotonic()
    checked = await playbook.check(cluster, plan)
    db0 = name(pod_on(kube, "db", "a100-0"))
    assert checked.dry_run == [], "a budget that refuses now is waited out by the run, not a refusal"
    assert checked.notes[-1] == (
        f"Pod/data/{db0}: PodDisruptionBudget data/db (0 disruptions allowed) refuses it now: "
        f"prod: Pod/data/{db0}: {PDB_429} The run retries it."
    ), "no wait on a 429 in a dry run"
    assert time.monotonic() - started < 5
    evictions = kube.calls("create", "pods/eviction")
    assert sorted(r.name for r in evictions) == sorted(c.target.name for c in plan.writes if c.evict)
    assert all(r.query.get("dryRun") == "All" for r in kube.requests if r.verb in ("patch", "create"))
    assert {name(p) for p in kube.all("pods")} == before
    assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") is None


async def test_blast_radius_limits_refuse_with_the_numbers(kube: KubeStandIn, cluster: KubeCluster) -> None:
    seed(kube)
    for n in range(3):
        kube.change("nodes", f"a100-{n}", "", lambda node: node["spec"].update(unschedulable=True))
    tight = waiting(1, max_nodes=3)
    _, plan = await plan_for(tight, cluster, "nodes=a100-0,a100-1,a100-2,a100-3")
    assert plan.refused == [
        "4 nodes is over the limit of 3 per request; split it or raise the limit.",
        "pool a100: 4 of 6 nodes is over the limit of 50% of a pool.",
    ], "nodes cordoned already still count: this request moves their pods"
    assert plan.notes[0] == "pool a100: 1 of 6 nodes Ready and schedulable after this."
    _, plan = await plan_for(waiting(1, min_ready_left=2), cluster, "nodes=a100-3")
    assert plan.refused == ["pool a100: only 1 Ready schedulable node(s) would remain; at least 2 must."]


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        (None, {"app": "web"}, False),
        ({}, {"app": "web"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "fe"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}, {"tier": "be"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "web"}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"app": "web"}, True),
    ],
)
def test_budget_selectors_select_as_the_api_server_does(
    selector: dict[str, Any] | None, labels: dict[str, str], selected: bool
) -> None:
    assert selects(selector, labels) is selected


async def test_twenty_nodes_plan_in_three_lists_and_drain(kube: KubeStandIn, cluster: KubeCluster) -> None:
    for n in range(41):
        kube.add_node(f"n-{n:02}", pool="big")
    chosen = [f"n-{n:02}" for n in range(20)]
    for d in range(5):
        kube.add_deployment(f"app-{d}", replicas=24, nodes=chosen)
        kube.add_pdb(f"app-{d}", match_labels={"app": f"app-{d}"}, max_unavailable="100%")
    drain = DrainLimits(pdb_wait_seconds=5, retry_seconds=0.05, concurrency=20)
    registry = discover(IncidentConfig(mitigation=MitigationConfig(drain=drain, nodes=NodeLimits(max_nodes=20))))
    playbook, plan = await plan_for(registry, cluster, f"nodes={','.join(chosen)}")
    assert len(plan.writes) == 20 + 120 and plan.refused == []
    assert "PodDisruptionBudget default/app-0: this drain evicts 24 pods it covers; it allows 24 disruptions now." in (
        plan.notes
    )
    assert sorted((r.verb, r.resource) for r in kube.requests) == [
        ("list", "nodes"),
        ("list", "poddisruptionbudgets"),
        ("list", "pods"),
    ]
    results = await playbook.run(cluster, plan)
    assert {r.outcome for r in results} == {Outcome.DONE} and kube.all("pods") == []
