"""The Kubernetes stand-in is as strict as an API server: each rule proven over raw HTTP, then with the real client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml

from tests.kube_http import APPS, DEPLOYS, JSONP, KUSTOMIZATIONS, MERGE, NODES, PODS, SMP, Api, names, session_for
from tests.kube_standin import SERVICE_ACCOUNT, KubeStandIn


async def test_bearer_token_impersonation_and_rbac_denials_read_like_the_real_server(
    kube: KubeStandIn, api: Api
) -> None:
    kube.add_node("n1")
    for headers in ({}, {"Authorization": "Bearer stolen"}):
        async with aiohttp.ClientSession(headers=headers) as s, s.get(kube.url + NODES) as r:
            assert r.status == 401 and (await r.json())["reason"] == "Unauthorized"
    kube.forbid("patch", "nodes")
    status, body = await api("PATCH", f"{NODES}/n1", {"spec": {"unschedulable": True}}, SMP)
    assert status == 403 and body["reason"] == "Forbidden" and body["details"] == {"name": "n1", "kind": "nodes"}
    assert body["message"] == (
        'nodes "n1" is forbidden: User "system:serviceaccount:firebreak:firebreak" cannot patch resource "nodes" '
        'in API group "" at the cluster scope'
    )
    kube.forbid("create", "pods/eviction", user="alice")
    status, body = await api("POST", f"{PODS}/p/eviction", {"metadata": {"name": "p"}}, Impersonate_User="alice")
    assert status == 403 and body["message"] == (
        'pods "p" is forbidden: User "alice" cannot create resource "pods/eviction" in API group "" '
        'in the namespace "default"'
    )
    kube.forbid("list", "deployments")
    status, body = await api("GET", DEPLOYS)
    assert body["message"].startswith(f'deployments.apps is forbidden: User "{SERVICE_ACCOUNT}" cannot list resource')
    kube.forbid("impersonate", "users")
    status, body = await api("GET", NODES, Impersonate_User="bob")
    assert status == 403 and f'users "bob" is forbidden: User "{SERVICE_ACCOUNT}" cannot impersonate' in body["message"]
    assert kube.requests[-1].impersonated == "bob"
    assert kube.calls("create", "pods/eviction")[0].user == "alice"


async def test_writes_bump_one_resource_version_and_stale_ones_conflict(kube: KubeStandIn, api: Api) -> None:
    kube.add_node("n1")
    kube.add_deployment("web")
    _, node = await api("GET", f"{NODES}/n1")
    _, patched = await api("PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": 3}}, MERGE)
    assert int(patched["metadata"]["resourceVersion"]) > int(node["metadata"]["resourceVersion"])
    stale = node["metadata"]["resourceVersion"]
    _, fresh = await api("PATCH", f"{NODES}/n1", {"spec": {"unschedulable": True}}, SMP)
    assert fresh["spec"]["unschedulable"] is True and fresh["metadata"]["resourceVersion"] != stale
    status, body = await api("PUT", f"{NODES}/n1", node)  # the object as read before the patch
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on nodes "n1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    status, _ = await api("PATCH", f"{NODES}/n1", {"metadata": {"resourceVersion": stale}, "spec": {}}, MERGE)
    assert status == 409
    status, same = await api("PATCH", f"{NODES}/n1", {"spec": {"unschedulable": True}}, MERGE)
    assert status == 200 and same["metadata"]["resourceVersion"] == fresh["metadata"]["resourceVersion"], "no-op"
    _, listed = await api("GET", NODES)
    assert listed["metadata"]["resourceVersion"] == str(kube.rv) and "kind" not in listed["items"][0]
    kube.add_application("shop")
    _, app = await api("GET", f"{APPS}/shop")
    del app["metadata"]["resourceVersion"]
    status, body = await api("PUT", f"{APPS}/shop", app)
    assert status == 422, "custom resources do not allow an unconditional update"
    assert "metadata.resourceVersion: Invalid value: 0: must be specified for an update" in body["message"]


async def test_label_and_field_selectors_filter_like_the_list_handler(kube: KubeStandIn, api: Api) -> None:
    kube.add_node("a1", pool="a", labels={"gpu": "t4"})
    kube.add_node("a2", pool="a", unschedulable=True)
    kube.add_node("b1", pool="b")
    kube.add_node("bare", pool_label="other", pool="x")
    pool = "cloud.google.com/gke-nodepool"
    cases = {
        f"{pool}=a": ["a1", "a2"],
        f"{pool}==b": ["b1"],
        f"{pool}!=a": ["b1", "bare"],
        f"{pool} in (a,b)": ["a1", "a2", "b1"],
        f"{pool} notin (a)": ["b1", "bare"],
        "gpu": ["a1"],
        "!gpu": ["a2", "b1", "bare"],
        f"{pool}=a,!gpu": ["a2"],
    }
    for selector, expected in cases.items():
        _, body = await api("GET", f"{NODES}?labelSelector={quote(selector)}")
        assert names(body) == expected, selector
    status, body = await api("GET", f"{NODES}?labelSelector=gpu%20in%20t4")
    assert status == 400 and body["message"].startswith("unable to parse requirement")
    _, body = await api("GET", f"{NODES}?fieldSelector=spec.unschedulable%3Dtrue")
    assert names(body) == ["a2"]
    kube.add_pod("p1", node="a1")
    kube.add_pod("p2", node="b1", phase="Pending", ready=False)
    kube.add_pod("p3", "other", node="a1")
    for selector, expected in [("spec.nodeName=a1", ["p1", "p3"]), ("status.phase=Pending", ["p2"])]:
        _, body = await api("GET", f"/api/v1/pods?fieldSelector={selector}")
        assert names(body) == expected
    _, body = await api("GET", f"{PODS}?fieldSelector=metadata.name!=p1,spec.nodeName==b1")
    assert names(body) == ["p2"]
    status, body = await api("GET", f"{PODS}?fieldSelector=spec.foo%3Dx")
    assert (status, body["message"]) == (400, "field label not supported: spec.foo")
    status, body = await api("GET", f"{NODES}?fieldSelector=status.phase%3DReady")
    assert status == 400
    _, page = await api("GET", f"{NODES}?limit=3")
    assert names(page) == ["a1", "a2", "b1"] and page["metadata"]["remainingItemCount"] == 1
    _, rest = await api("GET", f"{NODES}?limit=3&continue={page['metadata']['continue']}")
    assert names(rest) == ["bare"] and "continue" not in rest["metadata"]


async def test_patch_formats_and_what_each_kind_accepts(kube: KubeStandIn, api: Api) -> None:
    kube.add_application("shop")
    kube.add_kustomization("infra")
    kube.add_deployment("web", images_by_revision=["app:v1"])
    status, body = await api("PATCH", f"{APPS}/shop", {"spec": {"syncPolicy": None}}, SMP)
    assert status == 415 and body["reason"] == "UnsupportedMediaType", "no strategic merge for custom resources"
    status, body = await api("PATCH", f"{APPS}/shop", {"spec": {"syncPolicy": {"automated": None}}}, MERGE)
    assert status == 200 and body["spec"]["syncPolicy"] == {}
    status, body = await api(
        "PATCH", f"{KUSTOMIZATIONS}/infra", [{"op": "add", "path": "/spec/suspend", "value": True}], JSONP
    )
    assert status == 200 and body["spec"]["suspend"] is True
    status, body = await api("PATCH", f"{KUSTOMIZATIONS}/infra", {"spec": {"suspend": False}}, JSONP)
    assert status == 400, "a dict under json-patch, as CustomObjectsApi sends by default, is refused"
    assert (await api("PATCH", f"{DEPLOYS}/web", {"spec": {}}, "text/plain"))[0] == 415
    test_op = [
        {"op": "test", "path": "/spec/replicas", "value": 7},
        {"op": "replace", "path": "/spec/replicas", "value": 0},
    ]
    status, body = await api("PATCH", f"{DEPLOYS}/web", test_op, JSONP)
    assert status == 422 and "testing value /spec/replicas failed" in body["details"]["causes"][0]["message"]
    assert (await api("PATCH", f"{DEPLOYS}/web", [{"op": "remove", "path": "/spec/nope"}], JSONP))[0] == 422
    sidecar = {"name": "proxy", "image": "envoy:1"}
    containers = {"spec": {"template": {"spec": {"containers": [sidecar]}}}}
    _, body = await api("PATCH", f"{DEPLOYS}/web", containers, SMP)
    assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == ["app", "proxy"], "merged by name"
    bump = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2"}]}}}}
    _, body = await api("PATCH", f"{DEPLOYS}/web", bump, SMP)
    assert [c["image"] for c in body["spec"]["template"]["spec"]["containers"]] == ["app:v2", "envoy:1"]
    drop = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "$patch": "delete"}]}}}}
    _, body = await api("PATCH", f"{DEPLOYS}/web", drop, SMP)
    assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == ["app"]
    _, body = await api("PATCH", f"{DEPLOYS}/web", containers, MERGE)
    assert body["spec"]["template"]["spec"]["containers"] == [sidecar], "merge patch replaces lists"


async def test_dry_run_validates_and_answers_but_keeps_nothing(kube: KubeStandIn, api: Api) -> None:
    kube.add_deployment("web", replicas=2)
    rv = kube.rv
    new = {"metadata": {"name": "api"}, "spec": (await api("GET", f"{DEPLOYS}/web"))[1]["spec"]}
    status, body = await api("POST", f"{DEPLOYS}?dryRun=All", new)
    assert status == 201 and body["metadata"]["uid"] and "resourceVersion" not in body["metadata"]
    status, body = await api("PATCH", f"{DEPLOYS}/web?dryRun=All", {"spec": {"replicas": 5}}, MERGE)
    assert status == 200 and body["spec"]["replicas"] == 5 and body["metadata"]["generation"] == 2
    assert (await api("DELETE", f"{DEPLOYS}/web?dryRun=All"))[0] == 200
    status, body = await api(
        "PUT", f"{DEPLOYS}/web?dryRun=All", {"metadata": {"name": "web"}, "spec": new["spec"] | {"replicas": 7}}
    )
    assert status == 200 and body["spec"]["replicas"] == 7, body["message"]
    assert body["metadata"]["resourceVersion"] == str(rv)
    status, body = await api("PATCH", f"{DEPLOYS}/web?dryRun=All", {"spec": {"replicas": -1}}, MERGE)
    assert status == 422, "dry run still validates"
    assert kube.rv == rv and kube.get("deployments", "web", "default")["spec"]["replicas"] == 2
    assert (await api("GET", f"{DEPLOYS}/api"))[0] == 404
    status, body = await api("PATCH", f"{DEPLOYS}/web?dryRun=true", {"spec": {"replicas": 5}}, MERGE)
    assert status == 422 and body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"true"}: supported values: "All"'
    )


async def test_invalid_writes_and_not_found_are_status_objects(kube: KubeStandIn, api: Api) -> None:
    kube.add_deployment("web")
    kube.add_helmrelease("redis")
    status, body = await api("PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": -1}}, MERGE)
    assert (status, body["reason"]) == (422, "Invalid")
    why = "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    assert body["message"] == f'Deployment.apps "web" is invalid: {why}'
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    kube.max_replicas = 10
    status, body = await api("PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": 11}}, MERGE)
    assert status == 422 and "ValidatingAdmissionPolicy" in body["message"]
    wrong = {"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}
    status, body = await api("PATCH", f"{DEPLOYS}/web", wrong, SMP)
    assert status == 422 and "`selector` does not match template `labels`" in body["message"]
    assert (await api("PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": "3"}}, MERGE))[0] == 400
    hr = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/redis"
    status, body = await api("PATCH", hr, {"spec": {"suspend": "yes"}}, MERGE)
    assert status == 422 and "spec.suspend in body must be of type boolean" in body["message"]
    status, body = await api("GET", f"{DEPLOYS}/nope")
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404,
    }  # fmt: skip
    status, body = await api("GET", "/apis/apps/v1/namespaces/default/statefulsets")
    assert (status, body["message"]) == (404, "the server could not find the requested resource")


async def test_scripted_failures_and_delays(kube: KubeStandIn, api: Api) -> None:
    kube.add_node("n1")
    kube.fail("list", "nodes", 503, retry_after=2)
    kube.fail("get", "nodes", 500, times=2)
    async with session_for(kube) as s, s.get(kube.url + NODES) as r:
        assert (r.status, r.headers["Retry-After"], (await r.json())["reason"]) == (503, "2", "ServiceUnavailable")
    assert (await api("GET", NODES))[0] == 200
    assert [(await api("GET", f"{NODES}/n1"))[0] for _ in range(3)] == [500, 500, 200]
    kube.delay("patch", "nodes", 5, after=True)  # stop() releases it
    cordon = {"spec": {"unschedulable": True}}
    async with session_for(kube, timeout=0.1) as s:
        with pytest.raises(asyncio.TimeoutError):
            await s.patch(kube.url + f"{NODES}/n1", json=cordon, headers={"Content-Type": MERGE})
    assert kube.get("nodes", "n1")["spec"]["unschedulable"] is True, "timed out, yet applied"


async def test_every_request_is_recorded_and_a_kubeconfig_points_here(
    kube: KubeStandIn, api: Api, tmp_path: Path
) -> None:
    kube.add_node("n1")
    await api("GET", f"{NODES}?labelSelector=a%3Db")
    await api("PATCH", f"{NODES}/n1", {"spec": {"unschedulable": True}}, SMP, Impersonate_User="carol")
    await api("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
    lst, patch, pods = kube.requests
    assert (lst.method, lst.verb, lst.resource, lst.query) == ("GET", "list", "nodes", {"labelSelector": "a=b"})
    assert (patch.content_type, patch.body, patch.user) == (SMP, {"spec": {"unschedulable": True}}, "carol")
    assert patch.headers["Impersonate-User"] == "carol" and patch.query == {}
    assert len(kube.calls("list")) == 2 and len(kube.calls("list", "pods")) == 1 and pods.status == 200
    config = yaml.safe_load(kube.write_kubeconfig(tmp_path / "kubeconfig", context="test").read_text())
    assert config["current-context"] == "test" and config["clusters"][0]["cluster"]["server"] == kube.url
    assert config["users"][0]["user"]["token"] == kube.token


async def test_the_real_kubernetes_client_works_unmodified(kube: KubeStandIn, tmp_path: Path) -> None:
    k8s: Any = pytest.importorskip("kubernetes_asyncio")
    kube.add_node("n1", pool="blue")
    kube.add_node("n2", pool="green")
    configuration = k8s.client.Configuration()
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    await k8s.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with k8s.client.ApiClient(configuration) as client:
        core = k8s.client.CoreV1Api(client)
        nodes = await core.list_node(label_selector="cloud.google.com/gke-nodepool=blue")
        assert [n.metadata.name for n in nodes.items] == ["n1"] and nodes.items[0].status.node_info.kubelet_version
        node = await core.patch_node("n1", {"spec": {"unschedulable": True}})
        assert node.spec.unschedulable is True
    assert [(r.verb, r.content_type) for r in kube.requests] == [("list", "application/json"), ("patch", SMP)]
