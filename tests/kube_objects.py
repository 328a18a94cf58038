"""Object shapes and the two controllers the stand-in runs, so seeded objects and their status look like a cluster's.

Shapes follow k8s.io/api's JSON: every field the kubernetes-asyncio models require is present (a NodeSystemInfo
without bootID, a PDB condition without lastTransitionTime would fail deserialization), false booleans with
`omitempty` (spec.unschedulable, spec.paused) are omitted as the real server omits them.

- The deployment controller (pkg/controller/deployment): a deployment owns ReplicaSets named
  `<deployment>-<pod-template-hash>`; a new pod template gets a new ReplicaSet with revision max+1; a template
  equal (ignoring pod-template-hash) to an old ReplicaSet's reuses that one and moves it to revision max+1, recording
  the old number in `deployment.kubernetes.io/revision-history` (what `kubectl rollout undo` relies on); the
  deployment's revision annotation follows; a paused deployment does not roll out but still scales. Rollouts are
  instant: the new ReplicaSet takes all replicas and old ones go to 0. Pods are not reconciled.
- The disruption controller (pkg/controller/disruption): a PDB's status is computed from its matching pods;
  integer minAvailable expects the matching pods, maxUnavailable and percentages expect the scale of the pods'
  controllers (rounded up), and a pod whose controller cannot be found makes the PDB fail safe (0 disruptions).
"""

from __future__ import annotations

import copy
import hashlib
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.kube_rules import get_path
from tests.kube_select import labels_match, selector_requirements

REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet: no vowels, no look-alikes


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def meta(
    name: str, namespace: str = "", labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def node(
    name: str,
    *,
    pool: str | None,
    pool_label: str,
    ready: bool,
    unschedulable: bool,
    labels: dict[str, str] | None,
    node_info: dict[str, str] | None,
) -> dict[str, Any]:
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    all_labels.update({pool_label: pool} if pool else {})
    all_labels.update(labels or {})
    t = now()
    info = {
        "architecture": "amd64",
        "bootID": new_uid(),
        "containerRuntimeVersion": "containerd://1.7.22",
        "kernelVersion": "6.1.100+",
        "kubeProxyVersion": "v1.31.1",
        "kubeletVersion": "v1.31.1",
        "machineID": uuid.uuid4().hex,
        "operatingSystem": "linux",
        "osImage": "Container-Optimized OS from Google",
        "systemUUID": new_uid(),
        **(node_info or {}),
    }

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {"type": kind, "status": status, "lastHeartbeatTime": t, "lastTransitionTime": t} | {
            "reason": reason,
            "message": message,
        }

    ready_condition = (
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        if ready
        else condition("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    )
    return {
        "metadata": meta(name, labels=all_labels),
        "spec": {"podCIDR": "10.0.0.0/24", **({"unschedulable": True} if unschedulable else {})},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3920m", "memory": "13Gi", "pods": "110"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ready_condition,
            ],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": info,
        },
    }


def owner_ref(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    m = obj["metadata"]
    ref = {"apiVersion": api_version, "kind": kind, "name": m["name"], "uid": m["uid"]}
    return ref | {"controller": True, "blockOwnerDeletion": True}


def pod(
    name: str,
    namespace: str,
    *,
    node: str | None,
    labels: dict[str, str] | None,
    phase: str,
    ready: bool,
    owners: list[dict[str, Any]],
    containers: list[dict[str, Any]],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    t = now()
    spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always", "schedulerName": "default-scheduler"}
    spec |= {"serviceAccountName": "default", "terminationGracePeriodSeconds": 30}
    spec |= {"nodeName": node} if node else {}
    conditions = [
        {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": t}
        for kind, ok in (("PodScheduled", node is not None), ("Initialized", True), ("Ready", ready))
    ]
    m = meta(name, namespace, labels, annotations)
    if owners:
        m["ownerReferences"] = owners
    return {"metadata": m, "spec": spec, "status": {"phase": phase, "conditions": conditions, "startTime": t}}


def pod_ready(p: dict[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    conditions = get_path(p, "status.conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def workload_template(labels: dict[str, str], image: str, container: str) -> dict[str, Any]:
    return {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"name": container, "image": image}]}}


def template_hash(template: dict[str, Any]) -> str:
    """Stable per template, in the controller's alphabet (the real one is FNV-32a of the template, safe-encoded)."""
    digest = hashlib.sha256(repr(_without_hash(template)).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    (get_path(t, "metadata.labels") or {}).pop(HASH_LABEL, None)
    return t


def revision(obj: dict[str, Any]) -> int:
    return int((get_path(obj, "metadata.annotations") or {}).get(REVISION, "0"))


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = get_path(obj, "metadata.ownerReferences") or []
    return any(r.get("uid") == owner["metadata"]["uid"] for r in refs)


def roll(deploy: dict[str, Any], replicasets: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One sync of the deployment controller: the deployment (revision, status) and the ReplicaSets that changed
    or are new (new ones have no uid yet). Pure: the stand-in writes what it returns."""
    d = copy.deepcopy(deploy)
    spec, replicas, paused = d["spec"], d["spec"].get("replicas", 1), bool(d["spec"].get("paused"))
    owned = sorted((copy.deepcopy(rs) for rs in replicasets if owned_by(rs, d)), key=revision)
    template = _without_hash(spec["template"])
    matching = next((rs for rs in owned if _without_hash(rs["spec"]["template"]) == template), None)
    top = max((revision(rs) for rs in owned), default=0)
    current, changed = matching, set[int]()
    if paused:
        current = matching or (owned[-1] if owned else None)  # paused: no new ReplicaSet, the newest one scales
    elif matching is None:
        current = _new_replicaset(d, top + 1)
        owned.append(current)
        changed.add(id(current))
    elif revision(matching) != top:  # a rollback: the old ReplicaSet becomes the newest revision
        notes = matching["metadata"].setdefault("annotations", {})
        notes[HISTORY] = ",".join(filter(None, [notes.get(HISTORY, ""), str(revision(matching))]))
        notes[REVISION] = str(top + 1)
        changed.add(id(matching))
    for rs in owned:
        want = replicas if rs is current else (rs["spec"].get("replicas", 0) if paused else 0)
        if rs["spec"].get("replicas") != want or id(rs) in changed:
            rs["spec"]["replicas"] = want
            rs["status"] = {"replicas": want, "fullyLabeledReplicas": want, "readyReplicas": want} | {
                "availableReplicas": want,
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
            changed.add(id(rs))
    if current is not None:
        d["metadata"].setdefault("annotations", {})[REVISION] = current["metadata"]["annotations"][REVISION]
    total = sum(rs["spec"]["replicas"] for rs in owned)
    updated = replicas if matching is not None or (current is not None and not paused) else 0
    d["status"] = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": total} | {
        "updatedReplicas": updated,
        "readyReplicas": total,
        "availableReplicas": total,
    }
    return d, [rs for rs in owned if id(rs) in changed]


def _new_replicaset(d: dict[str, Any], rev: int) -> dict[str, Any]:
    m, spec = d["metadata"], d["spec"]
    hashed = template_hash(spec["template"])
    template = copy.deepcopy(spec["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hashed
    selector = copy.deepcopy(spec["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = hashed
    replicas = str(spec.get("replicas", 1))
    notes = {REVISION: str(rev), "deployment.kubernetes.io/desired-replicas": replicas}
    notes["deployment.kubernetes.io/max-replicas"] = str(int(replicas) + math.ceil(int(replicas) / 4))
    rs_meta = meta(f"{m['name']}-{hashed}", m["namespace"], template["metadata"]["labels"], notes)
    rs_meta["ownerReferences"] = [owner_ref(d, "apps/v1", "Deployment")]
    return {"metadata": rs_meta, "spec": {"replicas": 0, "selector": selector, "template": template}, "status": {}}


def pdb_status(pdb: dict[str, Any], pods: list[dict[str, Any]], scale: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """The disruption controller's status for `pdb`. `scale` maps a pod's controller owner uid (a ReplicaSet) to
    the uid and replicas of the controller that sets its scale (its Deployment, else itself)."""
    spec = pdb.get("spec") or {}
    reqs = selector_requirements(spec.get("selector"))
    namespace = pdb["metadata"]["namespace"]
    matching = [
        p for p in pods if p["metadata"]["namespace"] == namespace and labels_match(reqs, p["metadata"].get("labels"))
    ]
    healthy = sum(1 for p in matching if pod_ready(p) and not p["metadata"].get("deletionTimestamp"))
    failed = False
    bound = spec.get("maxUnavailable", spec.get("minAvailable"))
    if "minAvailable" in spec and isinstance(bound, int):
        expected, desired = len(matching), bound
    else:
        controllers: dict[str, int] = {}
        for p in matching:
            ref = next((r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is None:
                continue  # an unmanaged pod is ignored (with an event), not counted
            if ref["uid"] not in scale:
                failed = True  # "found no controllers for pod": the controller fails safe
                continue
            uid, replicas = scale[ref["uid"]]
            controllers[uid] = replicas
        expected = sum(controllers.values())
        n = math.ceil(expected * int(str(bound).rstrip("%")) / 100) if str(bound).endswith("%") else int(bound or 0)
        desired = max(0, expected - n) if "maxUnavailable" in spec else n
    allowed = 0 if failed else max(0, healthy - desired)
    reason = "SyncFailed" if failed else ("SufficientPods" if allowed > 0 else "InsufficientPods")
    condition = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False", "reason": reason}
    condition |= {"message": "", "observedGeneration": pdb["metadata"].get("generation", 1)}
    old: dict[str, Any] = next(iter(get_path(pdb, "status.conditions") or []), {})
    same = old.get("status") == condition["status"] and old.get("reason") == reason
    condition["lastTransitionTime"] = old["lastTransitionTime"] if same else now()
    return {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [condition],
    }
