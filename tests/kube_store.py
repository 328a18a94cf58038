"""The stand-in's object store, the writes the API server makes to it, and the seed helpers tests build a cluster with.

Every write goes through `commit`, which copies the storage layer's rules: one global resourceVersion bumped per
write (deletes too); a write that changes nothing is skipped and keeps its resourceVersion (etcd3 GuaranteedUpdate);
metadata.generation counts changes to everything but metadata (and status, where there is a status subresource);
dryRun returns what would be stored and stores nothing. After each write the deployment and disruption controllers
run (kube_objects), each of their changes being its own write, as in a cluster. Like a controller fed by informers,
which enqueues only the objects an event concerns (the disruption controller's pod handlers enqueue the PDBs that
select the pod; the deployment controller's ReplicaSet handlers enqueue the owning deployment), they look only at
what the writes since their last pass can have changed: a deployment written, or a ReplicaSet it owns (before or
after the write); a PDB written, the PDBs of a written pod's namespace whose selector matched it before or after,
and every PDB when a deployment or ReplicaSet (whose scale a budget counts) was written. An object outside those is
where the last pass left it, so its sync would write nothing: the writes, and their order, are those of a pass over
everything (tests/test_kube_workloads.py drives each of those paths). Deletion cascades to dependents through
ownerReferences like the garbage collector in Background mode, or strips the references (Orphan). Seeds write as
the cluster would (no request, no RBAC, no admission) and are validated like API writes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from tests import kube_objects as ko
from tests.kube_rules import BY_PLURAL, Resource
from tests.kube_select import labels_match, selector_requirements
from tests.kube_validate import check_types, validate

GKE_POOL = "cloud.google.com/gke-nodepool"


def _spec(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    skip = {"metadata", "kind", "apiVersion"} | ({"status"} if res.status_subresource else set())
    return {k: v for k, v in obj.items() if k not in skip}


def _unversioned(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return obj | {"metadata": meta}


Write = tuple[str, dict[str, Any] | None, dict[str, Any] | None]
"""(plural, the stored object before, after): one stored write, None for absent."""


def _deployments_touched(writes: list[Write]) -> set[str]:
    """Uids of the deployments whose sync can change after `writes`: those written, and the owners of a written
    ReplicaSet (roll reads the ReplicaSets a deployment owns, by ownerReferences uid)."""
    uids: set[str] = set()
    for plural, before, after in writes:
        for obj in (before, after):
            if obj is None:
                continue
            if plural == "deployments":
                uids.add(obj["metadata"]["uid"])
            elif plural == "replicasets":
                uids.update(r.get("uid", "") for r in obj["metadata"].get("ownerReferences") or [])
    return uids


def _budget_touched(pdb: dict[str, Any], writes: list[Write]) -> bool:
    """Whether the disruption controller's status for `pdb` can change after `writes`: it reads the PDB, the pods of
    its namespace its selector matches, and the scale of those pods' controllers."""
    meta = pdb["metadata"]
    reqs = selector_requirements((pdb.get("spec") or {}).get("selector"))
    for plural, before, after in writes:
        if plural in ("deployments", "replicasets"):
            return True
        for obj in (before, after):
            if obj is None:
                continue
            if plural == "poddisruptionbudgets" and obj["metadata"]["uid"] == meta["uid"]:
                return True
            same_namespace = obj["metadata"].get("namespace") == meta["namespace"]
            if plural == "pods" and same_namespace and labels_match(reqs, obj["metadata"].get("labels")):
                return True
    return False


class KubeStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        """(plural, namespace or "", name) -> the stored object, kind and apiVersion included. Read it freely; only
        `commit` and `remove` write it, keeping `_index` and `_writes` with it."""
        self.rv = 1000
        self._index: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        """plural -> namespace -> name -> the stored object, so `all` sorts one kind, not the whole store."""
        self._writes: list[Write] = []
        """The stored writes the controllers may not have looked at yet (see `_sync`)."""
        self._seen = {"deployments": 0, "poddisruptionbudgets": 0}
        """Per controller, where in `_writes` its last pass began: it looks again at everything written since."""
        self._reconciling = False

    # ---- the storage layer -------------------------------------------------------------------------------------

    def insert(self, res: Resource, obj: dict[str, Any], *, dry: bool = False) -> dict[str, Any]:
        obj = {"apiVersion": res.api_version, "kind": res.kind, **copy.deepcopy(obj)}
        meta = obj["metadata"]
        meta.update(uid=ko.new_uid(), creationTimestamp=ko.now())
        if res.has_generation:
            meta["generation"] = 1
        return self.commit(res, obj, None, dry=dry)

    def commit(
        self, res: Resource, new: dict[str, Any], current: dict[str, Any] | None, *, dry: bool = False
    ) -> dict[str, Any]:
        new = copy.deepcopy(new)
        meta = new["metadata"]
        if current is not None and res.has_generation:
            generation = current["metadata"].get("generation", 1)
            meta["generation"] = generation + (_spec(res, new) != _spec(res, current))
        if current is not None and _unversioned(new) == _unversioned(current):
            return copy.deepcopy(current)
        if dry:
            return new
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        key = (res.plural, meta.get("namespace", ""), meta["name"])
        stored = copy.deepcopy(new)
        self._writes.append((res.plural, self.objects.get(key), stored))
        self.objects[key] = stored
        self._index.setdefault(key[0], {}).setdefault(key[1], {})[key[2]] = stored
        self.reconcile()
        return new

    def remove(self, res: Resource, obj: dict[str, Any], *, orphan: bool) -> None:
        meta = obj["metadata"]
        key = (res.plural, meta.get("namespace", ""), meta["name"])
        gone = self.objects.pop(key, None)
        if gone is not None:
            self._writes.append((res.plural, gone, None))
            del self._index[key[0]][key[1]][key[2]]
        self.rv += 1
        for (plural, _, _), dependent in list(self.objects.items()):
            refs = dependent["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == meta["uid"] for r in refs):
                continue
            if orphan:
                kept = copy.deepcopy(dependent)
                kept["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != meta["uid"]]
                self.commit(BY_PLURAL[plural], kept, dependent)
            else:
                self.remove(BY_PLURAL[plural], dependent, orphan=False)
        self.reconcile()

    def all(self, plural: str, namespace: str = "") -> list[dict[str, Any]]:
        """The stored objects of one kind (in one namespace), sorted by namespace and name as etcd keys sort."""
        spaces = self._index.get(plural, {})
        chosen = [namespace] if namespace else sorted(spaces)
        return [o for ns in chosen for _, o in sorted(spaces.get(ns, {}).items())]

    # ---- the controllers ---------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        if self._reconciling:
            return
        self._reconciling = True
        try:
            for _ in range(10):
                if not self._sync():
                    break
        finally:
            self._reconciling = False

    def _sync(self) -> bool:
        """One pass of each controller, in the order a pass over everything takes, skipping the objects no write
        since that controller's previous pass can have changed (their sync would write nothing)."""
        deployments, replicasets = BY_PLURAL["deployments"], BY_PLURAL["replicasets"]
        changed = False
        start, touched, read = len(self._writes), set[str](), self._seen["deployments"]
        for d in self.all("deployments"):
            if read < len(self._writes):  # writes made earlier in this pass count, as they do in a full pass
                touched |= _deployments_touched(self._writes[read:])
                read = len(self._writes)
            if d["metadata"]["uid"] not in touched:
                continue
            rolled, written = ko.roll(d, self.all("replicasets", d["metadata"]["namespace"]))
            for rs in written:
                key = ("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
                self.commit(replicasets, rs, self.objects[key]) if key in self.objects else self.insert(replicasets, rs)
            if rolled != d:
                self.commit(deployments, rolled, d)
            changed = changed or bool(written) or rolled != d
        self._seen["deployments"] = start
        start = len(self._writes)
        since = self._writes[self._seen["poddisruptionbudgets"] :]  # a PDB's write changes no other PDB's status
        pdbs = [pdb for pdb in self.all("poddisruptionbudgets") if _budget_touched(pdb, since)]
        scale: dict[str, tuple[str, int]] = {}
        by_uid = {d["metadata"]["uid"]: d for d in self.all("deployments")} if pdbs else {}
        for rs in self.all("replicasets") if pdbs else []:
            ref = next((r for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            owner = by_uid.get(ref["uid"]) if ref else None
            scaler = owner or rs
            scale[rs["metadata"]["uid"]] = (scaler["metadata"]["uid"], scaler["spec"].get("replicas", 1))
        for pdb in pdbs:  # pdb_status reads only the pods of the PDB's own namespace
            status = ko.pdb_status(pdb, self.all("pods", pdb["metadata"]["namespace"]), scale)
            if status != pdb.get("status"):
                self.commit(BY_PLURAL["poddisruptionbudgets"], pdb | {"status": status}, pdb)
                changed = True
        self._seen["poddisruptionbudgets"] = start
        done = min(self._seen.values())
        del self._writes[:done]
        self._seen = {k: v - done for k, v in self._seen.items()}
        return changed

    # ---- seeds and inspection ----------------------------------------------------------------------------------

    def seed(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        res = BY_PLURAL[plural]
        check_types(res, obj)
        validate(res, obj, None)
        return self.insert(res, obj)

    def get(self, plural: str, name: str, namespace: str = "") -> dict[str, Any]:
        return copy.deepcopy(self.objects[(plural, namespace, name)])

    def change(self, plural: str, name: str, namespace: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """A change made by the cluster (a kubelet, a controller, a person with kubectl): a write like any other."""
        current = self.objects[(plural, namespace, name)]
        new = copy.deepcopy(current)
        edit(new)
        return self.commit(BY_PLURAL[plural], new, current)

    def replicasets_of(self, deployment: str, namespace: str = "default") -> list[dict[str, Any]]:
        """The deployment's ReplicaSets, oldest revision first."""
        d = self.objects[("deployments", namespace, deployment)]
        return sorted((rs for rs in self.all("replicasets", namespace) if ko.owned_by(rs, d)), key=ko.revision)

    def add_node(
        self,
        name: str,
        *,
        pool: str | None = None,
        pool_label: str = GKE_POOL,
        ready: bool = True,
        unschedulable: bool = False,
        labels: dict[str, str] | None = None,
        node_info: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        shape = ko.node(
            name,
            pool=pool,
            pool_label=pool_label,
            ready=ready,
            unschedulable=unschedulable,
            labels=labels,
            node_info=node_info,
        )
        return self.seed("nodes", shape)

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        *,
        node: str | None = None,
        labels: dict[str, str] | None = None,
        phase: str = "Running",
        ready: bool = True,
        owner: tuple[str, str] | None = None,
        image: str = "registry.example.com/app:v1",
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """`owner` is (kind, name): a ReplicaSet in the store is referenced by its uid; another kind (DaemonSet,
        StatefulSet, Job) gets a reference to an object the stand-in does not serve."""
        owners: list[dict[str, Any]] = []
        if owner is not None:
            kind, owner_name = owner
            api = "batch/v1" if kind == "Job" else "apps/v1"
            found = self.objects.get(("replicasets", namespace, owner_name)) if kind == "ReplicaSet" else None
            ref = {"apiVersion": api, "kind": kind, "name": owner_name, "uid": ko.new_uid()}
            owners = [
                ko.owner_ref(found, api, kind) if found else ref | {"controller": True, "blockOwnerDeletion": True}
            ]
        shape = ko.pod(
            name,
            namespace,
            node=node,
            labels=labels,
            phase=phase,
            ready=ready,
            owners=owners,
            containers=[{"name": "app", "image": image}],
            annotations=annotations,
        )
        return self.seed("pods", shape)

    def add_deployment(
        self,
        name: str,
        namespace: str = "default",
        *,
        images_by_revision: Sequence[str] = ("registry.example.com/app:v1",),
        replicas: int = 1,
        labels: dict[str, str] | None = None,
        container: str = "app",
        paused: bool = False,
        nodes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A deployment rolled out once per image (revision i+1 runs images_by_revision[i]), so its ReplicaSets hold
        that history; with `nodes`, its current ReplicaSet's pods, spread over them in turn."""
        labels = labels or {"app": name}
        templates = [ko.workload_template(labels, image, container) for image in images_by_revision]
        spec = {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": templates[0]}
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        spec |= {"strategy": strategy, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}
        self.seed("deployments", {"metadata": ko.meta(name, namespace, labels), "spec": spec, "status": {}})
        key = ("deployments", namespace, name)
        for edit in [{"template": t} for t in templates[1:]] + ([{"paused": True}] if paused else []):
            new = copy.deepcopy(self.objects[key])
            new["spec"].update(edit)
            self.commit(BY_PLURAL["deployments"], new, self.objects[key])
        current = self.replicasets_of(name, namespace)[-1]
        for i in range(replicas if nodes else 0):
            pod_name = f"{current['metadata']['name']}-{ko.template_hash({'pod': i})[:5]}"
            pod_labels = current["spec"]["template"]["metadata"]["labels"]
            owner = ("ReplicaSet", current["metadata"]["name"])
            self.add_pod(
                pod_name,
                namespace,
                node=nodes[i % len(nodes)],
                labels=pod_labels,
                owner=owner,
                image=images_by_revision[-1],
            )
        return self.get("deployments", name, namespace)

    def add_pdb(
        self,
        name: str,
        namespace: str = "default",
        *,
        match_labels: dict[str, str],
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
        unhealthy_pod_eviction_policy: str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(match_labels)}}
        spec |= {"minAvailable": min_available} if min_available is not None else {}
        spec |= {"maxUnavailable": max_unavailable} if max_unavailable is not None else {}
        policy = unhealthy_pod_eviction_policy
        spec |= {"unhealthyPodEvictionPolicy": policy} if policy else {}
        return self.seed("poddisruptionbudgets", {"metadata": ko.meta(name, namespace), "spec": spec, "status": {}})

    def add_application(
        self,
        name: str,
        namespace: str = "argocd",
        *,
        automated: bool = True,
        prune: bool = True,
        self_heal: bool = True,
    ) -> dict[str, Any]:
        source = {"repoURL": "https://git.example.com/platform.git", "path": f"apps/{name}", "targetRevision": "HEAD"}
        spec: dict[str, Any] = {"project": "default", "source": source}
        spec["destination"] = {"server": "https://kubernetes.default.svc", "namespace": name}
        spec["syncPolicy"] = {"automated": {"prune": prune, "selfHeal": self_heal}} if automated else {}
        status = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
        return self.seed("applications", {"metadata": ko.meta(name, namespace), "spec": spec, "status": status})

    def add_kustomization(self, name: str, namespace: str = "flux-system", *, suspend: bool = False) -> dict[str, Any]:
        spec: dict[str, Any] = {"interval": "10m", "path": f"./{name}", "prune": True}
        spec |= {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
        spec |= {"suspend": True} if suspend else {}  # Flux's `suspend,omitempty`
        return self.seed("kustomizations", {"metadata": ko.meta(name, namespace), "spec": spec})

    def add_helmrelease(self, name: str, namespace: str = "flux-system", *, suspend: bool = False) -> dict[str, Any]:
        chart = {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}
        spec: dict[str, Any] = {"interval": "10m", "chart": chart}
        spec |= {"suspend": True} if suspend else {}
        return self.seed("helmreleases", {"metadata": ko.meta(name, namespace), "spec": spec})
