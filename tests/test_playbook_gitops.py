"""pause-sync, resume-sync, freeze and unfreeze against the Kubernetes stand-in, through the real adapter: exact
restores, Flux suspends, parents that would undo a pause, one LIST per kind, undo of exactly what was done."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from bot.adapters.kubernetes import KubeCluster
from bot.core.config import IncidentConfig, MitigationConfig
from bot.core.errors import ClusterError, UsageError
from bot.core.playbook import Outcome, Plan, Playbook, PlaybookRegistry, Result
from bot.core.ports import ObjectRef, PatchType
from playbooks import discover
from playbooks._gitops import SAVED
from tests.kube_http import APPS, MERGE, SMP, Api
from tests.kube_standin import KubeStandIn

FULL = {
    "automated": {"prune": True, "selfHeal": True, "allowEmpty": False},
    "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
    "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
    "managedNamespaceMetadata": {"labels": {"team": "shop"}},
}
FULL_FACTS = {
    "automated": "prune, selfHeal",
    "sync options": "CreateNamespace=true, ServerSideApply=true",
    "retry": "limit 5 backoff 5s x2 up to 3m",
}


def app(
    kube: KubeStandIn, name: str, ns: str = "argocd", policy: Any = FULL, **meta: dict[str, Any] | list[Any]
) -> None:
    """An Application with this syncPolicy (None: none) and metadata (labels, annotations, ownerReferences)."""
    kube.add_application(name, ns)

    def edit(obj: dict[str, Any]) -> None:
        obj["spec"].pop("syncPolicy")
        obj["spec"] |= {"syncPolicy": copy.deepcopy(policy)} if policy is not None else {}
        obj["metadata"] |= copy.deepcopy(meta)

    kube.change("applications", name, ns, edit)


def labelled(kube: KubeStandIn, plural: str, name: str, ns: str, labels: dict[str, str]) -> None:
    kube.change(plural, name, ns, lambda o: o["metadata"].setdefault("labels", {}).update(labels))


async def planned(registry: PlaybookRegistry, cluster: KubeCluster, name: str, text: str) -> tuple[Playbook, Plan]:
    playbook, params = registry.parse(name, text)
    return playbook, await playbook.check(cluster, await playbook.plan(cluster, params, cluster_name="prod"))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pause-sync", "", "name exactly one of application=<name>, kustomization=<name> or helmrelease=<name>"),
        ("pause-sync", "application=a kustomization=b", "name exactly one of"),
        ("pause-sync", "application=Shop_1", "'Shop_1' is not a Kubernetes object name"),
        ("resume-sync", "helmrelease=x namespace=Flux.System", "'Flux.System' is not a namespace name"),
        ("freeze", "", "missing selector"),
        ("freeze", "selector=", "an empty selector would match everything"),
        ("freeze", "'selector=tier in ()'", "'tier in ()': 'in' needs at least one value"),
        ("freeze", "selector=a=b=c", "'b=c' is not a label value"),
        ("unfreeze", "selector=a objects=Deployment/default/web", "is not Application/<namespace>/<name>"),
    ],
)
async def test_a_mistake_gets_the_usage_line(registry: PlaybookRegistry, name: str, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        registry.parse(name, text)
    assert f"Usage: `/incident {registry.get(name).usage}`" in str(caught.value)
    _, params = registry.parse("freeze", "'selector=tier in (web, api),!legacy,team==payments'")
    assert params.model_dump()["selector"] == "tier in (web, api),!legacy,team==payments"


async def test_pause_then_resume_restores_the_sync_policy_exactly(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    app(kube, "shop")
    pause, plan = await planned(registry, cluster, "pause-sync", "application=shop")
    (change,) = plan.changes
    assert (change.before, change.after) == (
        FULL_FACTS,
        FULL_FACTS | {"automated": "off", "saved policy": f"annotation {SAVED}"},
    )
    assert plan.refused == plan.dry_run == plan.notes == []
    assert [c.query for c in kube.calls("patch", "applications")] == [{"dryRun": "All"}]
    assert kube.get("applications", "shop", "argocd")["spec"]["syncPolicy"] == FULL, "the dry run changed nothing"
    results = await pause.run(cluster, plan, as_user="alice@example.com")
    assert [r.outcome for r in results] == [Outcome.DONE]
    stored = kube.get("applications", "shop", "argocd")
    assert stored["spec"]["syncPolicy"] == {k: v for k, v in FULL.items() if k != "automated"}
    assert json.loads(stored["metadata"]["annotations"][SAVED]) == FULL, "the saved policy is on the Application"
    write = kube.calls("patch", "applications")[-1]
    assert (write.content_type, write.impersonated) == (MERGE, "alice@example.com")
    undo = pause.undo_params(plan, results)
    assert undo == {"application": "shop", "namespace": "argocd", "cluster": "prod"}
    resume, back = await planned(registry, cluster, "resume-sync", " ".join(f"{k}={v}" for k, v in undo.items()))
    assert (back.changes[0].before["automated"], back.changes[0].after) == ("off", FULL_FACTS)
    results = await resume.run(cluster, back)
    assert [r.outcome for r in results] == [Outcome.DONE]
    stored = kube.get("applications", "shop", "argocd")
    assert stored["spec"]["syncPolicy"] == FULL and SAVED not in stored["metadata"].get("annotations", {})
    assert kube.calls("patch", "applications")[-1].content_type == "application/json-patch+json"
    assert resume.undo_params(back, results) == undo
    _, again = await planned(registry, cluster, "resume-sync", "application=shop")
    assert again.changes[0].noop and again.refused == [], "automated and nothing saved: already resumed"


async def test_flux_suspend_round_trip_and_what_is_already_paused(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.add_kustomization("apps")
    kube.add_helmrelease("old", suspend=True)
    app(kube, "manual", policy={"syncOptions": ["Validate=false"]})
    pause, plan = await planned(registry, cluster, "pause-sync", "kustomization=apps")
    assert (plan.changes[0].before, plan.changes[0].after) == ({"suspend": "no"}, {"suspend": "yes"})
    await pause.run(cluster, plan)
    stored = kube.get("kustomizations", "apps", "flux-system")
    assert stored["spec"]["suspend"] is True
    assert stored["metadata"]["annotations"] == {"suspend.toolkit.fluxcd.io/reason": "firebreak pause-sync"}
    resume, plan = await planned(registry, cluster, "resume-sync", "kustomization=apps namespace=flux-system")
    assert [r.outcome for r in await resume.run(cluster, plan)] == [Outcome.DONE]
    stored = kube.get("kustomizations", "apps", "flux-system")
    assert "suspend" not in stored["spec"] and not stored["metadata"].get("annotations"), "as `flux resume` leaves it"
    assert {c.content_type for c in kube.calls("patch", "kustomizations")} == {MERGE}
    for text in ("helmrelease=old", "application=manual"):
        pause, plan = await planned(registry, cluster, "pause-sync", text)
        results = await pause.run(cluster, plan)
        assert plan.changes[0].noop and [r.outcome for r in results] == [Outcome.ALREADY]
        assert pause.undo_params(plan, results) is None, "nothing paused, nothing to undo"
    assert kube.calls("patch", "helmreleases") == [] and len(kube.calls("patch", "applications")) == 0


async def test_missing_objects_and_nothing_to_restore_are_refused_clearly(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    with pytest.raises(UsageError, match=r"^No Application argocd/ghost in cluster prod\.$"):
        await planned(registry, cluster, "pause-sync", "application=ghost")
    elsewhere = discover(IncidentConfig(mitigation=MitigationConfig(argocd_namespace="gitops")))
    with pytest.raises(UsageError, match="No Application gitops/ghost in cluster prod"):
        await planned(elsewhere, cluster, "resume-sync", "application=ghost")
    with pytest.raises(UsageError, match="No HelmRelease flux-system/redis in cluster prod"):
        await planned(registry, cluster, "resume-sync", "helmrelease=redis")
    app(kube, "manual", policy=None)
    app(kube, "mangled", "team-a", policy=None, annotations={SAVED: "automated"})
    _, plan = await planned(registry, cluster, "resume-sync", "application=manual")
    assert plan.changes == [] and "nothing recorded to restore" in plan.refused[0]
    assert "`argocd app set manual --sync-policy automated --self-heal --auto-prune`" in plan.refused[0]
    _, plan = await planned(registry, cluster, "resume-sync", "application=mangled namespace=team-a")
    assert plan.refused == [f"Application team-a/mangled: its {SAVED} annotation is not a saved sync policy "
                            "(JSON object); fix or remove it by hand."]  # fmt: skip


async def test_a_resume_raced_by_another_is_already_done_or_refused_as_changed(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    app(kube, "shop", policy={"syncOptions": ["Validate=false"]}, annotations={SAVED: json.dumps(FULL)})
    app(kube, "cart", policy={}, annotations={SAVED: json.dumps(FULL)})
    resume, shop = await planned(registry, cluster, "resume-sync", "application=shop")
    _, cart = await planned(registry, cluster, "resume-sync", "application=cart")

    def resumed(obj: dict[str, Any]) -> None:
        obj["spec"]["syncPolicy"], obj["metadata"]["annotations"] = copy.deepcopy(FULL), {}

    kube.change("applications", "shop", "argocd", resumed)
    kube.change("applications", "cart", "argocd", lambda o: o["metadata"]["annotations"].update({SAVED: "{}"}))
    assert [r.outcome for r in await resume.run(cluster, shop)] == [Outcome.ALREADY]
    (failed,) = await resume.run(cluster, cart)
    assert failed.outcome is Outcome.FAILED and "changed since the plan; nothing was written" in failed.message
    assert kube.get("applications", "cart", "argocd")["spec"]["syncPolicy"] == {}


async def test_parents_that_would_undo_a_pause_are_named_with_what_to_do(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    app(kube, "root")
    app(kube, "shop", labels={"app.kubernetes.io/instance": "root"})
    app(kube, "tenant-root", "team-a", policy={"automated": {"prune": True}})
    app(kube, "team-app", "team-a", annotations={
        "argocd.argoproj.io/tracking-id": "team-a_tenant-root:argoproj.io/Application:team-a/team-app"})  # fmt: skip
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "shops", "uid": "u-1"}
    app(kube, "eu", ownerReferences=[owner | {"controller": True, "blockOwnerDeletion": True}])
    kube.add_kustomization("apps")
    kube.add_kustomization("flux-system")
    kube.add_helmrelease("redis", "cache")
    flux = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    labelled(kube, "helmreleases", "redis", "cache", flux)
    itself = flux | {"kustomize.toolkit.fluxcd.io/name": "flux-system"}
    labelled(kube, "kustomizations", "flux-system", "flux-system", itself)

    async def notes(text: str, resource: str) -> tuple[list[str], int]:
        before = len(kube.calls("get", resource))
        _, plan = await planned(registry, cluster, "pause-sync", text)
        return plan.notes, len(kube.calls("get", resource)) - before

    assert await notes("application=shop", "applications") == (
        ["Application argocd/root would undo this pause of Application argocd/shop: it syncs what it manages "
         "automatically, with selfHeal: within seconds of any drift. Pause the parent first: "
         "`mitigate pause-sync application=root namespace=argocd cluster=prod`."], 2)  # fmt: skip
    found, gets = await notes("application=team-app namespace=team-a", "applications")
    assert gets == 2 and found[0].startswith("Application team-a/tenant-root would undo this pause")
    assert "at its next sync (a new commit to its source)" in found[0]
    found, gets = await notes("application=eu", "applications")
    assert gets == 1, "an ApplicationSet is not read"
    assert found[0].startswith("ApplicationSet argocd/shops may undo this pause of Application argocd/eu: unless")
    assert f"list {SAVED} in spec.preservedFields.annotations" in found[0]
    assert await notes("helmrelease=redis namespace=cache", "kustomizations") == (
        ["Kustomization flux-system/apps may undo this pause of HelmRelease cache/redis (if their manifests set "
         "spec.suspend): every 10m it server-side applies what it manages again, forcing back the fields the "
         "manifests set. Pause the parent first: `mitigate pause-sync kustomization=apps namespace=flux-system "
         "cluster=prod`."], 1)  # fmt: skip
    assert await notes("kustomization=flux-system", "kustomizations") == ([], 1), "it applies itself: no parent"
    kube.change("applications", "root", "argocd", lambda o: o["spec"]["syncPolicy"].pop("automated"))
    assert await notes("application=shop", "applications") == ([], 2), "a paused parent undoes nothing"


async def test_freeze_pauses_every_match_across_kinds_and_namespaces_and_unfreeze_undoes_exactly_that(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    team = {"team": "payments"}
    app(kube, "pay-root", labels=team)
    app(kube, "pay-api", labels=team | {"app.kubernetes.io/instance": "pay-root"})
    app(kube, "pay-web", "team-a", policy={"automated": {}}, labels=team)
    app(kube, "pay-old", policy={"syncOptions": ["Validate=false"]}, labels=team)
    app(kube, "search", labels={"team": "search"})
    kube.add_kustomization("payments")
    kube.add_kustomization("platform")
    kube.add_helmrelease("pay-db", "payments")
    kube.add_helmrelease("pay-cache", "payments", suspend=True)
    labelled(kube, "kustomizations", "payments", "flux-system", team)
    platform = {"kustomize.toolkit.fluxcd.io/name": "platform", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    labelled(kube, "helmreleases", "pay-db", "payments", team | platform)
    labelled(kube, "helmreleases", "pay-cache", "payments", team)
    freeze, plan = await planned(registry, cluster, "freeze", "selector=team=payments")
    lists = sorted((c.resource, c.namespace, c.query.get("labelSelector")) for c in kube.calls("list"))
    assert lists == [(r, "", "team=payments") for r in ("applications", "helmreleases", "kustomizations")]
    assert [(str(c.target), c.noop, c.phase) for c in plan.changes] == [
        ("Application/argocd/pay-api", False, 1),  # after pay-root, which would sync it back
        ("Application/argocd/pay-old", True, 0),
        ("Application/argocd/pay-root", False, 0),
        ("Application/team-a/pay-web", False, 0),
        ("Kustomization/flux-system/payments", False, 0),
        ("HelmRelease/payments/pay-cache", True, 0),
        ("HelmRelease/payments/pay-db", False, 0),
    ]
    assert len(plan.notes) == 1 and plan.notes[0].startswith("Kustomization flux-system/platform may undo this pause")
    assert len(kube.calls("get")) == 1, "one GET for the one parent outside the freeze"
    assert kube.calls("patch") and all(c.query == {"dryRun": "All"} for c in kube.calls("patch"))
    assert freeze.flag == "deploy freeze" and freeze.lasting and plan.dry_run == []
    results = await freeze.run(cluster, plan)
    assert [r.outcome for r in results].count(Outcome.DONE) == 5
    assert kube.get("applications", "search", "argocd")["spec"]["syncPolicy"] == FULL, "not matched, not frozen"
    assert kube.get("helmreleases", "pay-db", "payments")["spec"]["suspend"] is True
    undo = freeze.undo_params(plan, results)
    assert undo == {
        "selector": "team=payments",
        "objects": "Application/argocd/pay-api,Application/argocd/pay-root,Application/team-a/pay-web,"
        "Kustomization/flux-system/payments,HelmRelease/payments/pay-db",
        "cluster": "prod",
    }
    labelled(kube, "applications", "pay-web", "team-a", {"team": "web"})  # relabelled during the freeze
    kube.requests.clear()
    unfreeze, back = await planned(registry, cluster, "unfreeze", " ".join(f"{k}={v}" for k, v in undo.items()))
    relisted = sorted((c.resource, c.query.get("labelSelector", "")) for c in kube.calls("list"))
    selected = [(r, "team=payments") for r in ("applications", "helmreleases", "kustomizations")]
    assert relisted == [("applications", ""), *selected], "pay-web no longer matches: one more LIST finds it"
    assert [(str(c.target), c.phase) for c in back.changes][:2] == [
        ("Application/argocd/pay-api", 0), ("Application/argocd/pay-root", 1)]  # fmt: skip
    assert all(not c.noop for c in back.changes) and len(back.changes) == 5
    assert [r.outcome for r in await unfreeze.run(cluster, back)] == [Outcome.DONE] * 5
    assert kube.get("applications", "pay-api", "argocd")["spec"]["syncPolicy"] == FULL
    assert kube.get("applications", "pay-web", "team-a")["spec"]["syncPolicy"] == {"automated": {}}
    assert "automated" not in kube.get("applications", "pay-old", "argocd")["spec"]["syncPolicy"], "paused before"
    assert kube.get("helmreleases", "pay-cache", "payments")["spec"]["suspend"] is True, "suspended before"
    assert "suspend" not in kube.get("helmreleases", "pay-db", "payments")["spec"]


async def test_a_pause_of_unknown_outcome_is_undone_too_and_the_undo_is_harmless_if_it_never_landed(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    """A pause in flight when the process died (or unanswered) may have landed: pause-sync and freeze give an undo
    for it, which finds nothing to do on an object still syncing; the same for resume-sync and unfreeze."""
    app(kube, "shop", labels={"team": "shop"})
    kube.add_kustomization("shop")
    labelled(kube, "kustomizations", "shop", "flux-system", {"team": "shop"})

    async def undo_of_unknown(name: str, text: str) -> Plan:
        playbook, plan = await planned(registry, cluster, name, text)
        lost = [
            Result(target=c.target, outcome=Outcome.UNKNOWN, message="in flight when it stopped") for c in plan.writes
        ]
        undo = playbook.undo_params(plan, lost)
        assert undo is not None and playbook.undo_with is not None, name
        _, back = await planned(registry, cluster, playbook.undo_with, " ".join(f"{k}={v}" for k, v in undo.items()))
        return back

    for name, text in [("pause-sync", "application=shop"), ("pause-sync", "kustomization=shop")]:
        back = await undo_of_unknown(name, text)
        assert back.playbook == "resume-sync" and [c.noop for c in back.changes] == [True], text
    back = await undo_of_unknown("freeze", "selector=team=shop")
    assert back.playbook == "unfreeze" and [c.noop for c in back.changes] == [True, True]
    written = [c for c in kube.calls("patch") if c.query != {"dryRun": "All"}]
    assert written == [], "nothing but dry runs so far"
    pause, plan = await planned(registry, cluster, "pause-sync", "application=shop")
    assert [r.outcome for r in await pause.run(cluster, plan)] == [Outcome.DONE]
    back = await undo_of_unknown("resume-sync", "application=shop")
    assert back.playbook == "pause-sync" and [c.noop for c in back.changes] == [True], "still paused: already so"


async def test_unfreeze_by_hand_resumes_what_is_paused_and_says_what_it_will_not(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    team = {"team": "payments"}
    app(kube, "saved", policy={}, labels=team, annotations={SAVED: json.dumps(FULL)})
    app(kube, "off", policy=None, labels=team)
    app(kube, "on", labels=team)
    kube.add_helmrelease("legacy", suspend=True)
    labelled(kube, "helmreleases", "legacy", "flux-system", team)
    _, plan = await planned(registry, cluster, "unfreeze", "selector=team=payments")
    assert [str(c.target) for c in plan.changes] == ["Application/argocd/saved", "HelmRelease/flux-system/legacy"]
    assert plan.notes[0].startswith("Application argocd/off has automated sync off and nothing recorded to restore")
    assert plan.notes[1] == (
        "Suspended by someone other than firebreak, and resumed by this too: HelmRelease flux-system/legacy "
        "(no reason recorded)."
    )
    _, plan = await planned(registry, cluster, "unfreeze", "selector=team=nobody")
    assert plan.changes == [] and plan.refused == [
        "Nothing to unfreeze: nothing in prod matching 'team=nobody' was paused by firebreak or is suspended."
    ]


async def test_an_empty_match_refuses_and_a_kind_the_cluster_lacks_is_skipped(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry
) -> None:
    kube.fail("list", "helmreleases", 404, message="the server could not find the requested resource")
    _, plan = await planned(registry, cluster, "freeze", "'selector=team in (nobody)'")
    assert plan.notes == ["This cluster serves no HelmRelease (helm.toolkit.fluxcd.io/v2); none were looked for."]
    assert plan.changes == [] and plan.refused == [
        "Nothing to freeze: no Argo CD Application, Flux Kustomization or HelmRelease in prod matches "
        "'team in (nobody)'."
    ]


async def test_the_api_refuses_strategic_merge_for_custom_resources_and_rbac_denials_name_the_permission(
    kube: KubeStandIn, cluster: KubeCluster, registry: PlaybookRegistry, api: Api
) -> None:
    app(kube, "shop")
    status, body = await api("PATCH", f"{APPS}/shop", {"spec": {"syncPolicy": {"automated": None}}}, SMP)
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    assert body["message"].endswith("accepted media types include: application/json-patch+json, "
                                    "application/merge-patch+json")  # fmt: skip
    with pytest.raises(ValueError, match="custom resource: it takes merge or JSON patches"):
        ref = ObjectRef("argoproj.io/v1alpha1", "Application", "shop", "argocd")
        await cluster.patch(ref, {"spec": {}}, patch_type=PatchType.STRATEGIC)
    kube.forbid("patch", "applications", user="alice@example.com")
    pause, plan = await planned(registry, cluster, "pause-sync", "application=shop")
    assert plan.dry_run == [], "firebreak's own account may; the person asking may not"
    (result,) = await pause.run(cluster, plan, as_user="alice@example.com")
    assert result.outcome is Outcome.FAILED and "403 Forbidden" in result.message
    assert 'User "alice@example.com" cannot patch resource "applications" in API group "argoproj.io"' in result.message
    assert kube.get("applications", "shop", "argocd")["spec"]["syncPolicy"] == FULL
    kube.forbid("list", "kustomizations")
    denied = 'cannot list resource "kustomizations" in API group "kustomize.toolkit.fluxcd.io" at the cluster scope'
    with pytest.raises(ClusterError, match=re.escape(denied)):
        await planned(registry, cluster, "freeze", "selector=team=payments")
