"""The Cluster adapter (kubernetes-asyncio) against the strict Kubernetes stand-in: what playbooks will rely on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.kubernetes import KubeCluster, KubeClusters
from bot.core.errors import ClusterError, ConfigError
from bot.core.ports import ObjectRef, PatchType
from tests.conftest import free_port
from tests.kube_standin import KubeStandIn


@pytest.fixture
async def cluster(kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod-eu"))
    yield await clusters.get("prod-eu")
    await clusters.close()


def node(name: str) -> ObjectRef:
    return ObjectRef("v1", "Node", name)


async def test_list_by_label_and_cordon_with_a_strategic_merge_patch(kube: KubeStandIn, cluster: KubeCluster) -> None:
    for n in range(3):
        kube.add_node(f"gpu-{n}", pool="a100")
    kube.add_node("cpu-0", pool="general")
    nodes = await cluster.list("v1", "Node", label_selector="cloud.google.com/gke-nodepool=a100")
    assert sorted(n["metadata"]["name"] for n in nodes) == ["gpu-0", "gpu-1", "gpu-2"]
    patched = await cluster.patch(node("gpu-1"), {"spec": {"unschedulable": True}}, patch_type=PatchType.STRATEGIC)
    assert patched["spec"]["unschedulable"] is True
    assert kube.get("nodes", "gpu-1")["spec"]["unschedulable"] is True
    (call,) = kube.calls("patch", "nodes")
    assert call.content_type == "application/strategic-merge-patch+json"


async def test_dry_run_validates_and_changes_nothing(kube: KubeStandIn, cluster: KubeCluster) -> None:
    kube.add_node("gpu-0", pool="a100")
    before = kube.rv
    answer = await cluster.patch(
        node("gpu-0"), {"spec": {"unschedulable": True}}, patch_type=PatchType.STRATEGIC, dry_run=True
    )
    assert answer["spec"]["unschedulable"] is True
    assert kube.get("nodes", "gpu-0")["spec"].get("unschedulable") in (None, False) and kube.rv == before


async def test_a_stale_write_is_a_conflict_with_the_servers_words(kube: KubeStandIn, cluster: KubeCluster) -> None:
    kube.add_node("gpu-0", pool="a100")
    seen = await cluster.get(node("gpu-0"))
    assert seen is not None
    kube.change("nodes", "gpu-0", "", lambda n: n["metadata"]["labels"].update(kubelet="restarted"))
    stale = {"metadata": {"resourceVersion": seen["metadata"]["resourceVersion"]}, "spec": {"unschedulable": True}}
    with pytest.raises(ClusterError) as caught:
        await cluster.patch(node("gpu-0"), stale, patch_type=PatchType.MERGE)
    assert caught.value.status == 409 and "the object has been modified" in str(caught.value)


async def test_an_eviction_a_budget_forbids_is_a_429(kube: KubeStandIn, cluster: KubeCluster) -> None:
    kube.add_node("gpu-0", pool="a100")
    kube.add_deployment("vllm", "serving", replicas=2, labels={"app": "vllm"}, nodes=("gpu-0",))
    kube.add_pdb("vllm", "serving", match_labels={"app": "vllm"}, min_available=2)
    (pod, *_) = await cluster.list("v1", "Pod", namespace="serving", field_selector="spec.nodeName=gpu-0")
    ref = ObjectRef("v1", "Pod", pod["metadata"]["name"], "serving")
    with pytest.raises(ClusterError) as caught:
        await cluster.evict(ref)
    assert caught.value.status == 429 and "disruption budget" in str(caught.value)


async def test_forbidden_names_the_missing_permission_and_impersonation_is_sent(
    kube: KubeStandIn, cluster: KubeCluster
) -> None:
    kube.add_node("gpu-0", pool="a100")
    kube.forbid("patch", "nodes", user="alice@example.com")
    with pytest.raises(ClusterError) as caught:
        await cluster.patch(
            node("gpu-0"),
            {"spec": {"unschedulable": True}},
            patch_type=PatchType.STRATEGIC,
            as_user="alice@example.com",
        )
    assert caught.value.status == 403
    assert 'User "alice@example.com" cannot patch resource "nodes"' in str(caught.value)
    assert kube.calls("patch", "nodes")[-1].impersonated == "alice@example.com"


async def test_custom_resources_take_merge_patches_only(kube: KubeStandIn, cluster: KubeCluster) -> None:
    kube.add_application("checkout", automated=True)
    app = ObjectRef("argoproj.io/v1alpha1", "Application", "checkout", "argocd")
    paused = await cluster.patch(app, {"spec": {"syncPolicy": {"automated": None}}}, patch_type=PatchType.MERGE)
    assert "automated" not in paused["spec"]["syncPolicy"]
    with pytest.raises(ValueError, match="custom resource"):
        await cluster.patch(app, {"spec": {}}, patch_type=PatchType.STRATEGIC)
    assert await cluster.get(ObjectRef("argoproj.io/v1alpha1", "Application", "nope", "argocd")) is None


async def test_an_unreachable_cluster_and_an_unknown_context_say_so(tmp_path: Path) -> None:
    async with KubeStandIn() as kube:
        config = kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod-eu")
    text = config.read_text()
    dead = config.with_name("dead")
    dead.write_text(text.replace(text.split("server: ")[1].split()[0], f"http://127.0.0.1:{free_port()}"))
    clusters = KubeClusters(dead)
    try:
        cluster = await clusters.get("prod-eu")
        with pytest.raises(ClusterError, match="Couldn't reach the Kubernetes API of prod-eu") as caught:
            await cluster.list("v1", "Node")
        assert caught.value.status == 0
        with pytest.raises(ConfigError, match="can't use context staging"):
            await clusters.get("staging")
    finally:
        await clusters.close()


async def test_the_default_cluster_is_found_again_by_its_own_name(kube: KubeStandIn, tmp_path: Path) -> None:
    """Plans and undo parameters carry the cluster's own name: asking for it again reuses the same client."""
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod-us"))
    try:
        default = await clusters.get(None)
        assert default.name == "prod-us"
        assert await clusters.get("prod-us") is default
    finally:
        await clusters.close()


async def test_clients_are_remade_so_expiring_credentials_are_read_again(
    kube: KubeStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod-eu"))
    try:
        first = await clusters.get("prod-eu")
        monkeypatch.setattr(KubeClusters, "REFRESH_SECONDS", 0.0)
        second = await clusters.get("prod-eu")
        assert second is not first and second.name == "prod-eu"
        kube.add_node("gpu-0", pool="a100")
        assert [n["metadata"]["name"] for n in await first.list("v1", "Node")] == ["gpu-0"], "still usable a while"
    finally:
        await clusters.close()


async def test_a_write_without_an_answer_is_unknown_not_failed(kube: KubeStandIn, cluster: KubeCluster) -> None:
    kube.add_node("gpu-0", pool="a100")
    kube.delay("patch", "nodes", 30, after=True)  # applied, but the answer never comes in time
    cluster.timeout = 0.3
    with pytest.raises(ClusterError) as caught:
        await cluster.patch(node("gpu-0"), {"spec": {"unschedulable": True}}, patch_type=PatchType.STRATEGIC)
    assert caught.value.unanswered and "may or may not have been changed" in str(caught.value)
    assert kube.get("nodes", "gpu-0")["spec"]["unschedulable"] is True


async def test_the_environment_is_read_for_a_proxy_once_per_client_not_on_every_request(
    kube: KubeStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a proxy in the environment, aiohttp is told not to look for one (nor for ~/.netrc) on each request;
    with one (HTTPS_PROXY, NO_PROXY and the rest), it keeps reading them, per request, as it must."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    clusters = KubeClusters(config)
    try:
        plain = await clusters.get("prod")
        assert plain.api.rest_client.pool_manager.trust_env is False
        assert await plain.list("v1", "Node") == [], "requests still go through"
    finally:
        await clusters.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    clusters = KubeClusters(config)
    try:
        proxied = await clusters.get("prod")
        assert proxied.api.rest_client.pool_manager.trust_env is True
    finally:
        await clusters.close()
