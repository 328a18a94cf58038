"""What changed in an incident's scope over the last hours, read from the cluster through the Cluster port: Deployment
rollouts (ReplicaSet revisions), GitOps syncs (Argo CD history, Flux applied revisions) and node pools split across
node images, each with the playbook that would stop or undo it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.errors import ClusterError
from bot.core.ports import Cluster

REVISION = "deployment.kubernetes.io/revision"
"""The annotation the Deployment controller (and kubectl rollout history) numbers ReplicaSets by."""
SERVICE_LABELS = ("app", "app.kubernetes.io/name", "service")
"""Deployment labels matched against the scope's `service` (or `app`) label."""
GPU_DRIVER_LABELS = (
    "nvidia.com/cuda.driver-version.full",
    "nvidia.com/cuda.driver.major",
    "cloud.google.com/gke-gpu-driver-version",
)
"""Node labels naming the GPU driver: NVIDIA GPU Feature Discovery's (full, or major.minor.rev), then GKE's."""
ARGO = ("argoproj.io/v1alpha1", "Application")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
HELMRELEASE = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")


@dataclass(frozen=True)
class Mitigation:
    """A playbook request this change suggests: `/incident mitigate <playbook> <params>`."""

    playbook: str
    params: dict[str, str]


@dataclass(frozen=True)
class Rollout:
    at: datetime
    deployment: str
    namespace: str
    revision: int
    images: tuple[str, ...]
    previous: int | None
    """The revision before it (what a rollback of this rollout restores), None when it was the first."""
    current: bool
    """The Deployment's newest revision: the one running (or rolling out) now."""


@dataclass(frozen=True)
class Sync:
    at: datetime
    kind: str
    name: str
    namespace: str
    revision: str


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one pool sharing one node image: OS image, kubelet, kernel and GPU driver."""

    os_image: str
    kubelet: str
    kernel: str
    gpu_driver: str | None
    nodes: tuple[str, ...]
    newest: datetime | None
    """When its newest node was created."""


@dataclass(frozen=True)
class PoolSplit:
    """A pool whose nodes run more than one node image: a node-image rollout in progress (or stuck)."""

    at: datetime | None
    pool: str
    groups: tuple[NodeGroup, ...]
    """Newest group first: the one whose nodes appeared last."""
    appeared_in_window: bool


Change = Rollout | Sync | PoolSplit


@dataclass
class Changes:
    since: datetime
    hours: float
    cluster: str
    namespace: str
    service: str | None
    items: list[Change] = field(default_factory=list)
    """Newest first."""
    notes: list[str] = field(default_factory=list)
    pools: int = 0
    """Pools looked at (split or not)."""


def timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def created(obj: dict[str, Any]) -> datetime | None:
    return timestamp((obj.get("metadata") or {}).get("creationTimestamp"))


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _revision(rs: dict[str, Any]) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    return int(value) if str(value).isdigit() else None


def _images(template: dict[str, Any]) -> tuple[str, ...]:
    spec = template.get("spec") or {}
    return tuple(str(c.get("image", "")) for c in spec.get("containers") or [])


def _serves(deployment: dict[str, Any], service: str | None) -> bool:
    if service is None:
        return True
    labels = _labels(deployment)
    return deployment["metadata"]["name"] == service or any(labels.get(k) == service for k in SERVICE_LABELS)


def rollouts(deployments: list[dict[str, Any]], replicasets: list[dict[str, Any]], since: datetime) -> list[Rollout]:
    """Each ReplicaSet revision created since `since`, joined to its Deployment by the controller owner reference."""
    by_uid = {d["metadata"].get("uid"): d for d in deployments}
    history: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for rs in replicasets:
        owner = next((o for o in rs["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        rev = _revision(rs)
        if owner is not None and owner.get("uid") in by_uid and rev is not None:
            history[owner["uid"]].append((rev, rs))
    found = []
    for uid, revs in history.items():
        d = by_uid[uid]["metadata"]
        revs.sort(key=lambda r: r[0])
        for i, (rev, rs) in enumerate(revs):
            at = created(rs)
            if at is None or at < since:
                continue
            previous = revs[i - 1][0] if i else None
            images = _images((rs.get("spec") or {}).get("template") or {})
            current = i == len(revs) - 1
            found.append(Rollout(at, d["name"], d.get("namespace", ""), rev, images, previous, current))
    return found


def _argo_syncs(app: dict[str, Any], since: datetime) -> list[Sync]:
    meta = app["metadata"]
    found = []
    for entry in (app.get("status") or {}).get("history") or []:
        at = timestamp(entry.get("deployedAt"))
        revision = entry.get("revision") or ", ".join(entry.get("revisions") or [])
        if at is not None and at >= since:
            found.append(Sync(at, ARGO[1], meta["name"], meta.get("namespace", ""), str(revision or "?")))
    return found


def _flux_sync(kind: str, obj: dict[str, Any], since: datetime) -> Sync | None:
    status = obj.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    at = timestamp(ready.get("lastTransitionTime"))
    revision = status.get("lastAppliedRevision")
    latest = (status.get("history") or [{}])[0]
    if not revision and latest.get("chartVersion"):  # helm-controller v2 keeps releases in history[], newest first
        at = timestamp(latest.get("lastDeployed")) or at
        revision = f"{latest.get('chartName', '?')}@{latest['chartVersion']}"
    if at is None or at < since or not revision:
        return None
    return Sync(at, kind, obj["metadata"]["name"], obj["metadata"].get("namespace", ""), str(revision))


def _destination(kind: str, obj: dict[str, Any]) -> str | None:
    """The namespace a GitOps object deploys into, when it says so."""
    spec = obj.get("spec") or {}
    if kind == ARGO[1]:
        return (spec.get("destination") or {}).get("namespace")
    return spec.get("targetNamespace")


def gpu_driver(labels: dict[str, str]) -> str | None:
    if full := labels.get(GPU_DRIVER_LABELS[0]):
        return full
    if major := labels.get(GPU_DRIVER_LABELS[1]):
        rest = [labels.get(f"nvidia.com/cuda.driver.{p}") for p in ("minor", "rev")]
        return ".".join([major, *[r for r in rest if r]])
    return labels.get(GPU_DRIVER_LABELS[2])


def pool_splits(
    nodes: list[dict[str, Any]], pool_labels: tuple[str, ...], since: datetime
) -> tuple[int, list[PoolSplit]]:
    """Nodes grouped by pool, then by node image; the pools split across more than one image."""
    labels = [_labels(n) for n in nodes]
    pool_label = next((k for k in pool_labels if any(k in lbl for lbl in labels)), None)
    pools: dict[str, dict[tuple[str, str, str, str | None], list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for node, lbl in zip(nodes, labels, strict=True):
        info = (node.get("status") or {}).get("nodeInfo") or {}
        key = (
            str(info.get("osImage", "?")),
            str(info.get("kubeletVersion", "?")),
            str(info.get("kernelVersion", "?")),
            gpu_driver(lbl),
        )
        pools[lbl.get(pool_label, "(none)") if pool_label else "(none)"][key].append(node)
    splits = []
    for pool, groups in sorted(pools.items()):
        if len(groups) < 2:
            continue
        shaped = []
        for key, members in groups.items():
            times = [t for t in (created(n) for n in members) if t is not None]
            names = tuple(sorted(n["metadata"]["name"] for n in members))
            shaped.append(NodeGroup(*key, nodes=names, newest=max(times, default=None)))
        epoch = datetime.min.replace(tzinfo=since.tzinfo)
        shaped.sort(key=lambda g: g.newest or epoch, reverse=True)
        at = shaped[0].newest
        splits.append(PoolSplit(at, pool, tuple(shaped), at is not None and at >= since))
    return len(pools), splits


async def _listed(cluster: Cluster, api_version: str, kind: str, **where: Any) -> list[dict[str, Any]] | None:
    """One LIST; None when this cluster serves no such kind (its CRD is not installed: the API server says 404)."""
    try:
        return await cluster.list(api_version, kind, **where)
    except ClusterError as exc:
        if exc.status == 404:
            return None
        raise


def suggestion(change: Change, max_nodes: int) -> list[Mitigation]:
    """The playbooks that stop or undo a change; a cordon names at most `max_nodes` nodes (a request's limit)."""
    if isinstance(change, Rollout):
        where = {"deployment": change.deployment, "namespace": change.namespace}
        if change.previous is None:
            return [Mitigation("pause-rollout", where)] if change.current else []
        back = Mitigation("rollback", where if change.current else where | {"revision": str(change.previous)})
        return [back, Mitigation("pause-rollout", where)] if change.current else [back]
    if isinstance(change, Sync):
        return [Mitigation("pause-sync", {change.kind.lower(): change.name, "namespace": change.namespace})]
    return [Mitigation("cordon", {"nodes": ",".join(change.groups[0].nodes[:max_nodes])})]


async def what_changed(
    cluster: Cluster,
    *,
    cluster_name: str,
    scope: dict[str, str],
    hours: float,
    now: datetime,
    pool_labels: tuple[str, ...],
) -> Changes:
    """Every change since `hours` ago, newest first: one LIST per kind, asked concurrently."""
    since = now - timedelta(hours=hours)
    namespace = scope.get("namespace") or "default"
    service = scope.get("service") or scope.get("app")
    found = Changes(since, hours, cluster_name, namespace, service)
    deployments, replicasets, nodes, apps, kustomizations, helmreleases = await asyncio.gather(
        cluster.list("apps/v1", "Deployment", namespace=namespace),
        cluster.list("apps/v1", "ReplicaSet", namespace=namespace),
        cluster.list("v1", "Node"),
        _listed(cluster, *ARGO),
        _listed(cluster, *KUSTOMIZATION),
        _listed(cluster, *HELMRELEASE),
    )
    ours = [d for d in deployments if _serves(d, service)]
    items: list[Change] = [*rollouts(ours, replicasets, since)]
    wanted = scope.get("namespace")
    for (api_version, kind), objs in ((ARGO, apps), (KUSTOMIZATION, kustomizations), (HELMRELEASE, helmreleases)):
        if objs is None:
            found.notes.append(f"This cluster serves no {kind} ({api_version}); skipped.")
            continue
        for obj in objs:
            dest = _destination(kind, obj)
            if wanted and dest and dest != wanted:
                continue
            if kind == ARGO[1]:
                items += _argo_syncs(obj, since)
            elif (sync := _flux_sync(kind, obj, since)) is not None:
                items.append(sync)
    found.pools, splits = pool_splits(nodes, pool_labels, since)
    items += splits
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    # Timestamps have one-second resolution: two rollouts in one second are told apart by their revision.
    found.items = sorted(
        items, key=lambda c: (c.at or epoch, c.revision if isinstance(c, Rollout) else 0), reverse=True
    )
    return found
