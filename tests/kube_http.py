"""Raw HTTP helpers for the Kubernetes stand-in's own tests: paths, patch content types, a JSON caller."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.kube_standin import KubeStandIn

NODES, PODS = "/api/v1/nodes", "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
APPS = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"


def session_for(kube: KubeStandIn, timeout: float = 5) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {kube.token}"}
    return aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout))


class Api:
    """`await api(method, path, body, content_type, Impersonate_User=...)` -> (status, JSON answer)."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session

    async def __call__(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json", **headers: str
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        sent = {"Content-Type": ctype, **{k.replace("_", "-"): v for k, v in headers.items()}}
        async with self.session.request(method, self.url + path, data=data, headers=sent) as r:
            return r.status, await r.json()


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


def eviction(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}


def revisions(kube: KubeStandIn, deployment: str) -> list[tuple[str, int]]:
    """(revision annotation, replicas) of the deployment's ReplicaSets, oldest first."""
    sets = kube.replicasets_of(deployment)
    return [(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"]) for rs in sets]
