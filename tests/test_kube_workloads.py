"""The Kubernetes stand-in's controllers and the Eviction API behave as a cluster's do, proven over raw HTTP."""

from __future__ import annotations

from typing import Any

from tests.kube_http import (
    DEPLOYS,
    JSONP,
    MERGE,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
    SMP,
    Api,
    eviction,
    revisions,
)
from tests.kube_standin import KubeStandIn

REVISION = "deployment.kubernetes.io/revision"


def budget(pdb: dict[str, Any]) -> tuple[int, int, int, int]:
    s = pdb["status"]
    return s["expectedPods"], s["desiredHealthy"], s["currentHealthy"], s["disruptionsAllowed"]


async def test_eviction_honours_the_disruption_budget(kube: KubeStandIn, api: Api) -> None:
    kube.add_deployment("web", replicas=3, nodes=["n1", "n2", "n3"])
    kube.add_pdb("web", match_labels={"app": "web"}, min_available=2)
    _, pdb = await api("GET", f"{PDBS}/web")
    assert budget(pdb) == (3, 2, 3, 1) and pdb["status"]["conditions"][0]["reason"] == "SufficientPods"
    first, second, third = [p["metadata"]["name"] for p in kube.all("pods")]
    status, body = await api("POST", f"{PODS}/{first}/eviction?dryRun=All", eviction(first))
    assert status == 201 and len(kube.all("pods")) == 3, "a dry run evicts nothing"
    status, body = await api("POST", f"{PODS}/{first}/eviction", eviction(first))
    assert (status, body["status"], body["code"]) == (201, "Success", 201)
    assert (await api("GET", f"{PODS}/{first}"))[0] == 404
    status, body = await api("POST", f"{PODS}/{second}/eviction", eviction(second))
    assert status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}
    ]
    assert (await api("POST", f"{PODS}/gone/eviction", eviction("gone")))[1]["message"] == 'pods "gone" not found'
    status, body = await api("POST", f"{PODS}/{second}/eviction", eviction("other"))
    assert (status, body["message"]) == (400, "name in URL does not match name in Eviction object")
    kube.change("pods", third, "default", lambda p: p["status"].update(phase="Succeeded"))
    assert (await api("POST", f"{PODS}/{third}/eviction", eviction(third)))[0] == 201, "terminal pods skip the PDB"
    kube.add_pod("lone", labels={"app": "web"})
    kube.add_pdb("web-too", match_labels={"app": "web"}, max_unavailable="50%")
    status, body = await api("POST", f"{PODS}/lone/eviction", eviction("lone"))
    assert status == 500 and "more than one PodDisruptionBudget" in body["message"]


async def test_an_unready_pod_may_go_while_the_budget_is_met(kube: KubeStandIn, api: Api) -> None:
    for i, ready in enumerate([True, True, False]):
        kube.add_pod(f"db-{i}", labels={"app": "db"}, ready=ready)
    kube.add_pdb("db", match_labels={"app": "db"}, min_available=2)
    assert budget(kube.get("poddisruptionbudgets", "db", "default")) == (3, 2, 2, 0)
    assert (await api("POST", f"{PODS}/db-0/eviction", eviction("db-0")))[0] == 429
    assert (await api("POST", f"{PODS}/db-2/eviction", eviction("db-2")))[0] == 201, "IfHealthyBudget"


async def test_pdb_status_follows_the_disruption_controller(kube: KubeStandIn) -> None:
    kube.add_deployment("web", replicas=3, nodes=["n1"])
    kube.add_pdb("half-down", match_labels={"app": "web"}, max_unavailable="50%")
    assert budget(kube.get("poddisruptionbudgets", "half-down", "default")) == (3, 1, 3, 2), "50% of 3 rounds up"
    kube.add_pdb("half-up", "other", match_labels={"app": "web"}, min_available="50%")
    kube.add_pod("ds-pod", "other", labels={"app": "web"}, owner=("DaemonSet", "agent"))
    failed = kube.get("poddisruptionbudgets", "half-up", "other")
    assert failed["status"]["disruptionsAllowed"] == 0 and failed["status"]["conditions"][0]["reason"] == "SyncFailed"
    kube.add_pdb("everything", "spare", match_labels={})
    kube.add_pod("loose", "spare", labels={"x": "y"})
    assert kube.get("poddisruptionbudgets", "everything", "spare")["status"]["currentHealthy"] == 1, "empty selects all"


async def test_deployments_roll_out_new_replicasets_and_roll_back_to_old_ones(kube: KubeStandIn, api: Api) -> None:
    kube.add_deployment("web", images_by_revision=["app:v1", "app:v2", "app:v3"], replicas=2)
    _, listed = await api("GET", f"{REPLICASETS}?labelSelector=app%3Dweb")
    images = [rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in kube.replicasets_of("web")]
    assert revisions(kube, "web") == [("1", 0), ("2", 0), ("3", 2)] and images == ["app:v1", "app:v2", "app:v3"]
    deploy = kube.get("deployments", "web", "default")
    assert deploy["metadata"]["annotations"][REVISION] == "3" and len(listed["items"]) == 3
    assert all(rs["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"] for rs in listed["items"])
    _, body = await api("PATCH", f"{DEPLOYS}/web", {"metadata": {"labels": {"team": "x"}}}, MERGE)
    assert body["metadata"]["generation"] == deploy["metadata"]["generation"], "metadata is not spec"
    _, body = await api("PATCH", f"{DEPLOYS}/web", {"status": {"replicas": 99}}, MERGE)
    assert body["status"]["replicas"] == 2, "status is written through /status only"
    # kubectl rollout undo: the old ReplicaSet's template, without its hash label, replaces the deployment's.
    template = kube.replicasets_of("web")[0]["spec"]["template"]
    del template["metadata"]["labels"]["pod-template-hash"]
    undo = [{"op": "replace", "path": "/spec/template", "value": template}]
    _, body = await api("PATCH", f"{DEPLOYS}/web", undo, JSONP)
    assert body["metadata"]["generation"] == deploy["metadata"]["generation"] + 1
    assert revisions(kube, "web") == [("2", 0), ("3", 0), ("4", 2)], "the old ReplicaSet is reused as revision 4"
    assert kube.replicasets_of("web")[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert kube.get("deployments", "web", "default")["metadata"]["annotations"][REVISION] == "4"
    v9 = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v9"}]}}}}
    await api("PATCH", f"{DEPLOYS}/web", {"spec": {"paused": True}}, SMP)
    await api("PATCH", f"{DEPLOYS}/web", v9, SMP)
    assert len(kube.all("replicasets")) == 3, "a paused deployment does not roll out"
    _, scale = await api("PATCH", f"{DEPLOYS}/web/scale", {"spec": {"replicas": 4}}, MERGE)
    assert scale["kind"] == "Scale" and revisions(kube, "web")[-1] == ("4", 4), "paused, it still scales"
    await api("PATCH", f"{DEPLOYS}/web", {"spec": {"paused": None}}, MERGE)
    assert revisions(kube, "web")[-1] == ("5", 4), "resumed, the pending template rolls out"


async def test_a_strategic_rollback_needs_patch_replace(kube: KubeStandIn, api: Api) -> None:
    kube.add_deployment("web", images_by_revision=["app:v1"])
    sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}}}
    await api("PATCH", f"{DEPLOYS}/web", sidecar, SMP)
    old = kube.replicasets_of("web")[0]["spec"]["template"]
    _, merged = await api("PATCH", f"{DEPLOYS}/web", {"spec": {"template": old}}, SMP)
    assert len(merged["spec"]["template"]["spec"]["containers"]) == 2, "containers merge by name: proxy stays"
    old["metadata"]["labels"].pop("pod-template-hash")
    _, replaced = await api("PATCH", f"{DEPLOYS}/web", {"spec": {"template": old | {"$patch": "replace"}}}, SMP)
    assert replaced["spec"]["template"] == old and revisions(kube, "web") == [("2", 0), ("3", 1)]


async def test_deletion_cascades_and_honours_preconditions(kube: KubeStandIn, api: Api) -> None:
    kube.add_node("n1")
    kube.add_deployment("web", replicas=2, nodes=["n1"])
    deploy = kube.get("deployments", "web", "default")
    status, body = await api("DELETE", f"{DEPLOYS}/web", {"preconditions": {"resourceVersion": "1"}})
    assert status == 409 and "Precondition failed: ResourceVersion in precondition: 1" in body["message"]
    status, body = await api("DELETE", f"{DEPLOYS}/web")
    assert (status, body["status"], body["details"]["uid"]) == (200, "Success", deploy["metadata"]["uid"])
    assert kube.all("replicasets") == [] and kube.all("pods") == [], "the garbage collector followed ownerReferences"
    kube.add_deployment("api", nodes=["n1"])
    await api("DELETE", f"{DEPLOYS}/api", {"propagationPolicy": "Orphan"})
    (orphan,) = kube.all("replicasets")
    assert "ownerReferences" not in orphan["metadata"] or orphan["metadata"]["ownerReferences"] == []
    kube.add_pod("solo")
    assert (await api("DELETE", f"{PODS}/solo"))[1]["kind"] == "Pod", "pods answer with the deleted object"
    assert (await api("DELETE", f"{NODES}/n1"))[1]["status"] == "Success", "nodes answer with a Status"


async def test_controllers_follow_writes_to_what_they_read(kube: KubeStandIn, api: Api) -> None:
    """The controllers look only at what a write can change (kube_store): each path a write reaches them by."""
    kube.add_deployment("web", replicas=3, nodes=["n1"])
    kube.add_pdb("web", match_labels={"app": "web"}, max_unavailable=1)
    (rs,) = kube.replicasets_of("web")
    name = rs["metadata"]["name"]
    await api("PATCH", f"{REPLICASETS}/{name}", {"spec": {"replicas": 7}}, MERGE)
    assert revisions(kube, "web") == [("1", 3)], "a ReplicaSet scaled by hand is put back by its deployment"
    await api("DELETE", f"{DEPLOYS}/web", {"propagationPolicy": "Orphan"})
    assert budget(kube.get("poddisruptionbudgets", "web", "default")) == (3, 2, 3, 1)
    await api("PATCH", f"{REPLICASETS}/{name}", {"spec": {"replicas": 5}}, MERGE)
    assert budget(kube.get("poddisruptionbudgets", "web", "default")) == (5, 4, 3, 0), "the orphan's own scale counts"
    first = kube.all("pods")[0]["metadata"]["name"]
    await api("PATCH", f"{PODS}/{first}", {"metadata": {"labels": {"app": "moved"}}}, MERGE)
    assert budget(kube.get("poddisruptionbudgets", "web", "default")) == (5, 4, 2, 0), "a pod relabelled out of it"
    await api("PATCH", f"{PDBS}/web", {"spec": {"selector": {"matchLabels": {"app": "moved"}}}}, MERGE)
    assert budget(kube.get("poddisruptionbudgets", "web", "default")) == (5, 4, 1, 0), "a budget's own change"
