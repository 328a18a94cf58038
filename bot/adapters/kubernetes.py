"""Cluster on the Kubernetes API, through kubernetes-asyncio: one generic REST path per kind, explicit patch
content types, `dryRun=All`, impersonation, and API errors as ClusterError with the server's own message.

Several clusters are kubeconfig contexts; in a pod with no kubeconfig, the in-cluster service account.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from bot.core.errors import ClusterError, ConfigError
from bot.core.ports import ObjectRef, PatchType

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
ANY = {200: "object", 201: "object"}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def builtin(self) -> bool:
        """Built-in kinds take strategic merge patches; custom resources refuse them (415)."""
        return "." not in self.group or self.group.endswith(".k8s.io")

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        path = f"{root}/{self.plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path


RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Node"): Resource("", "v1", "nodes", namespaced=False),
    ("v1", "Pod"): Resource("", "v1", "pods", namespaced=True),
    ("apps/v1", "Deployment"): Resource("apps", "v1", "deployments", namespaced=True),
    ("apps/v1", "ReplicaSet"): Resource("apps", "v1", "replicasets", namespaced=True),
    ("policy/v1", "PodDisruptionBudget"): Resource("policy", "v1", "poddisruptionbudgets", namespaced=True),
    ("argoproj.io/v1alpha1", "Application"): Resource("argoproj.io", "v1alpha1", "applications", namespaced=True),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): Resource(
        "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", namespaced=True
    ),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): Resource(
        "helm.toolkit.fluxcd.io", "v2", "helmreleases", namespaced=True
    ),
}


def resource(api_version: str, kind: str) -> Resource:
    found = RESOURCES.get((api_version, kind))
    if found is None:
        raise ValueError(f"firebreak has no mapping for {api_version} {kind}")
    return found


IN_CLUSTER = "in-cluster"
"""The name of the cluster firebreak runs in, when it uses its pod's service account."""
NO_ANSWER = "NoAnswer"
"""ClusterError.reason when a call was sent and never answered (its effect is unknown; see .unanswered)."""


class KubeCluster:
    """One cluster (one kubeconfig context). `name` is the context, shown in plans and errors."""

    def __init__(self, api: k8s.ApiClient, name: str, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.api = api
        self.name = name
        self.timeout = timeout

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        r = resource(ref.api_version, ref.kind)
        try:
            return await self._call("GET", r.path(ref.namespace, ref.name), what=str(ref))
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        r = resource(api_version, kind)
        query = [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
        found = await self._call("GET", r.path(namespace), query=query, what=f"{kind} list")
        return list(found.get("items") or [])

    async def patch(
        self,
        ref: ObjectRef,
        body: Any,
        *,
        patch_type: PatchType,
        dry_run: bool = False,
        as_user: str | None = None,
    ) -> dict[str, Any]:
        r = resource(ref.api_version, ref.kind)
        if patch_type is PatchType.STRATEGIC and not r.builtin:
            raise ValueError(f"{ref.kind} is a custom resource: it takes merge or JSON patches, not strategic merge")
        return await self._call(
            "PATCH",
            r.path(ref.namespace, ref.name),
            body=body,
            content_type=patch_type.value,
            query=[("dryRun", "All")] if dry_run else (),
            as_user=as_user,
            what=str(ref),
        )

    async def evict(self, pod: ObjectRef, *, dry_run: bool = False, as_user: str | None = None) -> None:
        r = resource("v1", "Pod")
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
        }
        if dry_run:
            eviction["deleteOptions"] = {"dryRun": ["All"]}
        await self._call(
            "POST",
            r.path(pod.namespace, pod.name, "eviction"),
            body=eviction,
            content_type="application/json",
            query=[("dryRun", "All")] if dry_run else (),
            as_user=as_user,
            what=str(pod),
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        as_user: str | None = None,
        what: str,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if as_user:
            # The API server's audit log and RBAC see the person who asked, not firebreak's service account.
            headers["Impersonate-User"] = as_user
        try:
            data = await self.api.call_api(
                path,
                method,
                query_params=list(query),
                header_params=headers,
                body=body,
                response_types_map=ANY,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            raise api_error(exc, what, self.name) from None
        except aiohttp.ClientConnectorError as exc:
            raise ClusterError(
                f"Couldn't reach the Kubernetes API of {self.name} ({type(exc).__name__}); nothing was changed "
                f"on {what} by this call.",
                status=0,
                reason="Unreachable",
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The request may have reached the API server before the answer was lost: a write may have landed.
            raise ClusterError(
                f"No answer from the Kubernetes API of {self.name} about {what} within {self.timeout:g} s "
                f"({type(exc).__name__}): it may or may not have been changed; check it.",
                status=0,
                reason=NO_ANSWER,
            ) from exc
        return dict(data or {})


def api_error(exc: ApiException, what: str, cluster: str) -> ClusterError:
    """The API server's own words (its Status message names a missing permission, the conflict, the budget)."""
    message, reason = "", str(exc.reason or "")
    try:
        status = json.loads(exc.body or "{}")
        message, reason = str(status.get("message") or ""), str(status.get("reason") or reason)
    except (TypeError, ValueError):
        message = str(exc.body or "")[:300]
    code = int(exc.status or 0)
    return ClusterError(f"{cluster}: {what}: {code} {reason}: {message}".rstrip(": "), status=code, reason=reason)


class KubeClusters:
    """Clients per kubeconfig context, made on first use and remade every REFRESH_SECONDS: credentials that
    expire (an exec plugin's token, as EKS and GKE use; a pod's rotated service-account token) are read again.
    A cluster is found by the name it was asked for and by its own name (the default context's name, or
    `in-cluster`), since plans and undo parameters carry the latter."""

    REFRESH_SECONDS = 600.0

    def __init__(self, kubeconfig: Path | None = None, default_context: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.default_context = default_context
        self._clusters: dict[str, tuple[KubeCluster, float]] = {}
        self._retired: list[tuple[KubeCluster, float]] = []
        self._lock = asyncio.Lock()

    async def get(self, context: str | None = None) -> KubeCluster:
        asked = context or self.default_context or ""
        loop = asyncio.get_running_loop()
        async with self._lock:
            found = self._clusters.get(asked)
            if found is not None and loop.time() - found[1] < self.REFRESH_SECONDS:
                return found[0]
            wanted = None if asked in ("", IN_CLUSTER) else asked
            if asked == IN_CLUSTER and not (self.kubeconfig is None and _in_cluster()):
                wanted = asked  # a kubeconfig context that happens to be called so
            cluster = await self._connect(wanted)
            now = loop.time()
            for key in {asked, cluster.name}:
                if (old := self._clusters.get(key)) is not None and old[0] is not cluster:
                    self._retired.append((old[0], now))
                self._clusters[key] = (cluster, now)
            await self._close_retired(now)
            return cluster

    async def _close_retired(self, now: float) -> None:
        """Clients replaced a while ago (no call of theirs can still be running) are closed."""
        keep = []
        live = {id(c) for c, _ in self._clusters.values()}
        for cluster, since in self._retired:
            if id(cluster) in live:
                continue
            if now - since > 4 * REQUEST_TIMEOUT_SECONDS:
                await cluster.api.close()
            else:
                keep.append((cluster, since))
        self._retired = keep

    async def _connect(self, context: str | None) -> KubeCluster:
        configuration = k8s.Configuration()
        try:
            if self.kubeconfig is None and context is None and _in_cluster():
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                name = IN_CLUSTER
            else:
                loader = await k8s_config.load_kube_config(
                    config_file=str(self.kubeconfig) if self.kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                current = loader.current_context or {}
                name = context or str(current["name"])
        except (k8s_config.ConfigException, OSError) as exc:
            raise ConfigError(f"Kubernetes: can't use context {context or '(default)'}: {exc}") from None
        api = k8s.ApiClient(configuration)
        if not urllib.request.getproxies():
            # kubernetes-asyncio's session trusts the environment: aiohttp then looks up proxy variables and
            # ~/.netrc in a thread on every request, which during a 600-pod drain cost more CPU than the requests.
            # With no proxy in the environment there is nothing to find (credentials come from the kubeconfig).
            api.rest_client.pool_manager._trust_env = False
        return KubeCluster(api, name)

    async def close(self) -> None:
        clients = {id(c): c for c, _ in [*self._clusters.values(), *self._retired]}
        for cluster in clients.values():
            await cluster.api.close()
        self._clusters.clear()
        self._retired.clear()


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
