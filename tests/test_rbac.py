"""deploy/rbac.yaml is exactly what firebreak needs: with only its ClusterRole granted (the stand-in matching rules
as the RBAC authorizer does), every playbook is planned, dry-run, run and undone through the real adapter, and
`/incident changes` reads, without a denial; every permission the role grants is used by one of those calls, so a
stale permission fails here too. The optional impersonation role is proven the same way, and its resourceNames
restriction holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.kubernetes import KubeCluster, KubeClusters
from bot.core.config import POOL_LABELS as POOLS
from bot.core.config import DrainLimits, IncidentConfig, MitigationConfig
from bot.core.errors import ClusterError
from bot.core.playbook import Outcome, Playbook, PlaybookRegistry, Result
from bot.core.ports import ObjectRef, PatchType
from bot.core.what_changed import what_changed
from playbooks import discover
from tests.conftest import repo_root
from tests.kube_rbac import Rule
from tests.kube_standin import SERVICE_ACCOUNT, KubeStandIn

DEPLOY = repo_root() / "deploy"
PDB_WAIT = 0.2
FORWARD = [
    ("cordon", "nodes=a100-4"),
    ("drain", "nodes=a100-0"),
    ("rollback", "deployment=shop namespace=shop"),
    ("pause-rollout", "deployment=shop namespace=shop"),
    ("scale", "deployment=shop namespace=shop replicas=3"),
    ("pause-sync", "application=shop"),
    ("pause-sync", "kustomization=apps"),
    ("pause-sync", "helmrelease=redis"),
    ("freeze", "selector=team=pay"),
]
"""Each request, then its undo: between them every playbook in playbooks/ runs."""


def manifests(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The objects of a file in deploy/, by (kind, name)."""
    docs = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def rules(name: str, role: str) -> list[dict[str, Any]]:
    return list(manifests(name)[("ClusterRole", role)]["rules"])


def grants(found: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {g for r in found for g in Rule.of(r).grants()}


@pytest.fixture
async def cluster(kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod"))
    yield await clusters.get("prod")
    await clusters.close()


def seed(kube: KubeStandIn) -> None:
    """Nodes in a pool; web (its budget allows one eviction) and db (its budget allows none) on a100-0; a Deployment
    with two revisions; an Argo CD Application, a Flux Kustomization and HelmRelease, all labelled team=pay."""
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100")
    kube.add_deployment("web", replicas=3, nodes=["a100-0", "a100-1", "a100-2"])
    kube.add_pdb("web", match_labels={"app": "web"}, min_available=2)
    kube.add_deployment("db", "data", replicas=2, nodes=["a100-0", "a100-3"])
    kube.add_pdb("db", "data", match_labels={"app": "db"}, max_unavailable=0)
    kube.add_deployment("shop", "shop", images_by_revision=("shop:v1", "shop:v2"), replicas=2)
    kube.add_application("shop")
    kube.add_kustomization("apps")
    kube.add_helmrelease("redis")
    gitops = [("applications", "shop", "argocd"), ("kustomizations", "apps", "flux-system")]
    for plural, name, ns in [*gitops, ("helmreleases", "redis", "flux-system")]:
        kube.change(plural, name, ns, lambda o: o["metadata"].setdefault("labels", {}).update(team="pay"))


async def attempt(
    playbook: Playbook, cluster: KubeCluster, params: Any, as_user: str | None
) -> tuple[dict[str, Any] | None, list[Result]]:
    """Plan, dry-run and run one request as the bot does; its undo's parameters and the results."""
    plan = await playbook.check(cluster, await playbook.plan(cluster, params, cluster_name="prod"), as_user=as_user)
    assert (plan.refused, plan.dry_run) == ([], []), f"{playbook.name} {params}"
    assert plan.writes, f"{playbook.name} {params} would change nothing, so its write went untested"
    results = await playbook.run(cluster, plan, as_user=as_user)
    return playbook.undo_params(plan, results), results


async def run_all(registry: PlaybookRegistry, cluster: KubeCluster, as_user: str | None = None) -> list[Result]:
    """Every request in FORWARD and then its undo (through the same playbook contract the runner uses)."""
    ran: set[str] = set()
    results: list[Result] = []
    for name, text in FORWARD:
        playbook, params = registry.parse(name, text)
        undo, done = await attempt(playbook, cluster, params, as_user)
        assert undo is not None and playbook.undo_with is not None, f"{name} {text} did nothing to undo: {done}"
        reverse = registry.get(playbook.undo_with)
        _, undone = await attempt(reverse, cluster, reverse.params.model_validate(undo), as_user)
        ran |= {name, reverse.name}
        results += done + undone
    assert ran == {p.name for p in registry}, "a playbook in playbooks/ is not exercised here: add it to FORWARD"
    return results


async def read_changes(cluster: KubeCluster) -> None:
    """What `/incident changes` reads, with the same role (its reads are always firebreak's own)."""
    found = await what_changed(
        cluster, cluster_name="prod", scope={"namespace": "shop"}, hours=6, now=datetime.now(UTC), pool_labels=POOLS
    )
    assert found.notes == [] and found.items, "every kind served and read"


def check_outcomes(results: list[Result]) -> None:
    """Everything done, but db's pod: its budget allows no eviction, so it fails after the wait, naming the budget
    (which takes the GET of the pod and the LIST of budgets the role grants for exactly that)."""
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    assert [r.target.namespace for r in failed] == ["data"], failed
    assert f"blocked by PodDisruptionBudget data/db (0 disruptions allowed) for {PDB_WAIT:g} s" in failed[0].message
    assert {r.outcome for r in results if r not in failed} <= {Outcome.DONE, Outcome.ALREADY}


def registry_for(**mitigation: Any) -> PlaybookRegistry:
    drain = DrainLimits(pdb_wait_seconds=PDB_WAIT, retry_seconds=0.02)
    return discover(IncidentConfig(mitigation=MitigationConfig(drain=drain, **mitigation)))


def test_the_role_is_bound_to_the_account_the_deployment_runs_as() -> None:
    rbac, app = manifests("rbac.yaml"), manifests("kubernetes.yaml")
    deployment = app[("Deployment", "firebreak")]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = deployment["metadata"]["namespace"]
    assert rbac[("ServiceAccount", account)]["metadata"]["namespace"] == namespace
    assert f"system:serviceaccount:{namespace}:{account}" == SERVICE_ACCOUNT, "the user the stand-in authenticates"
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    for file, role in (("rbac.yaml", "firebreak"), ("rbac-impersonate.yaml", "firebreak-impersonate")):
        binding = manifests(file)[("ClusterRoleBinding", role)]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        assert binding["subjects"] == [subject]
    assert grants(rules("rbac-impersonate.yaml", "firebreak-impersonate")) == {("impersonate", "", "users")}


async def test_every_playbook_runs_with_the_role_and_uses_all_of_it(kube: KubeStandIn, cluster: KubeCluster) -> None:
    role = rules("rbac.yaml", "firebreak")
    kube.enforce_rbac(role)
    seed(kube)
    results = await run_all(registry_for(), cluster)
    await read_changes(cluster)
    denied = [a for a in kube.access if not a.allowed]
    assert denied == [] and not [r for r in kube.requests if r.status == 403], denied
    check_outcomes(results)
    used = {(a.verb, a.group, a.resource) for a in kube.access if a.user == SERVICE_ACCOUNT}
    assert grants(role) - used == set(), "granted but no call needs it: remove it from deploy/rbac.yaml"
    assert kube.calls("create", "pods/eviction") and not kube.calls("delete"), "a drain evicts, it never deletes"


async def test_impersonated_writes_need_the_impersonation_role_and_only_for_mapped_users(
    kube: KubeStandIn, cluster: KubeCluster
) -> None:
    role = rules("rbac.yaml", "firebreak")
    impersonating = rules("rbac-impersonate.yaml", "firebreak-impersonate")
    kube.enforce_rbac(role)
    seed(kube)
    registry = registry_for()
    alice = "alice@example.com"  # what the bot passes for a requester mapped in mitigation.impersonate
    # Without the impersonation role, the first write (the dry run) is refused as the impersonation filter says.
    cordon, params = registry.parse("cordon", "nodes=a100-4")
    plan = await cordon.check(cluster, await cordon.plan(cluster, params, cluster_name="prod"), as_user=alice)
    assert plan.dry_run == [
        f'Node/a100-4: prod: Node/a100-4: 403 Forbidden: users "{alice}" is forbidden: User '
        f'"{SERVICE_ACCOUNT}" cannot impersonate resource "users" in API group "" at the cluster scope'
    ]
    # Restricted by resourceNames to the mapped users, as the role's comment says to do.
    kube.enforce_rbac([rule | {"resourceNames": [alice]} for rule in impersonating])
    kube.access.clear()
    results = await run_all(registry, cluster, as_user=alice)
    await read_changes(cluster)
    assert [a for a in kube.access if not a.allowed] == []
    check_outcomes(results)
    assert {r.impersonated for r in kube.requests if r.verb in ("patch", "create")} == {alice}
    mine = {(a.verb, a.group, a.resource) for a in kube.access if a.user == SERVICE_ACCOUNT}
    assert grants(impersonating) <= mine
    writes = {g for g in grants(role) if g[0] in ("patch", "create")}
    assert grants(role) - mine == writes, "impersonating, the account's own write permissions go unused"
    # Only the writes and their dry runs act as the person; every read stays the service account's.
    assert {a.verb for a in kube.access if a.user == alice} == {"patch", "create"}
    node = ObjectRef("v1", "Node", "a100-4")
    with pytest.raises(
        ClusterError, match=f'users "bob@example.com" is forbidden: User "{SERVICE_ACCOUNT}" cannot imp'
    ):
        await cluster.patch(
            node, {"spec": {"unschedulable": True}}, patch_type=PatchType.STRATEGIC, as_user="bob@example.com"
        )
