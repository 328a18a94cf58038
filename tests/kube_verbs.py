"""The API server's verbs over the stand-in's store: list, create, update, patch, delete and evict, as the real one
decides them.

- list: label and field selectors (kube_select), limit/continue paging with remainingItemCount, items sorted by
  namespace and name as etcd keys sort; typed lists carry kind and apiVersion once, on the list.
- create: kind/apiVersion and namespace must match the URL (400); status is reset (PrepareForCreate: a pod starts
  Pending); deployments get their defaults; a taken name is 409 AlreadyExists.
- update and patch share one path (rest.BeforeUpdate onwards): the name cannot change (400), a uid or
  resourceVersion differing from the stored one is 409 Conflict, server-owned metadata is kept, status is kept
  where there is a status subresource, and custom resources refuse a PUT without resourceVersion (they do not
  AllowUnconditionalUpdate). A PATCH carrying a stale metadata.resourceVersion is thus a conflict, as on a cluster.
- delete: DeleteOptions.preconditions compare-and-delete (409), Orphan or cascading propagation.
- evict: EvictionREST.Create (see `evict`).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from tests import kube_objects as ko
from tests.kube_patch import apply_patch
from tests.kube_rules import (
    BY_PLURAL,
    KubeError,
    Resource,
    already_exists,
    bad_request,
    conflict,
    dry_run,
    get_path,
    invalid,
    invalid_value,
    not_found,
)
from tests.kube_select import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_requirements,
)
from tests.kube_store import KubeStore
from tests.kube_validate import admit, check_types, validate

PDB_VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


class KubeVerbs(KubeStore):
    def __init__(self) -> None:
        super().__init__()
        self.max_replicas: int | None = None
        """Set to model a ValidatingAdmissionPolicy capping deployment and replicaset replicas (422 above it)."""

    def api_get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((res.plural, namespace, name))
        if obj is None:
            raise not_found(res, name)
        return copy.deepcopy(obj)

    def api_list(self, res: Resource, namespace: str, query: dict[str, str]) -> dict[str, Any]:
        reqs = parse_label_selector(query.get("labelSelector", ""))
        terms = parse_field_selector(res, query.get("fieldSelector", ""))
        found = [o for o in self.all(res.plural, namespace) if labels_match(reqs, o["metadata"].get("labels"))]
        found = [o for o in found if fields_match(terms, o)]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        try:
            limit = int(query.get("limit") or 0)
            start = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        except ValueError:
            raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
        if limit > 0 and start + limit < len(found):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(found) - start - limit
        page = copy.deepcopy(found[start : start + limit] if limit > 0 else found[start:])
        # Typed lists carry kind and apiVersion once, on the list; custom resources' items keep their own.
        items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} if res.builtin else o for o in page]
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}

    def api_create(self, res: Resource, namespace: str, raw: bytes, content_type: str, dry: bool) -> dict[str, Any]:
        obj = decode(raw, content_type, res)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if res.namespaced:
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + ko.template_hash(obj)[:5]
        if res.status_subresource:  # PrepareForCreate: clients do not set status (a new pod starts Pending)
            obj["status"] = {"phase": "Pending"} if res.plural == "pods" else {}
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp"):
            meta.pop(key, None)
        self._check(res, obj, None)
        if (res.plural, namespace, meta["name"]) in self.objects:
            raise already_exists(res, meta["name"])
        return self.insert(res, obj, dry=dry)

    def api_update(
        self, res: Resource, namespace: str, name: str, raw: bytes, content_type: str, dry: bool
    ) -> dict[str, Any]:
        obj = decode(raw, content_type, res)
        current = self.api_get(res, namespace, name)
        if not get_path(obj, "metadata.resourceVersion") and not res.builtin:  # CRs do not AllowUnconditionalUpdate
            c = invalid_value("metadata.resourceVersion", 0, "must be specified for an update")
            raise invalid(res.kind, res.group, name, [c])
        return self._save(res, current, obj, dry)

    def api_patch(
        self, res: Resource, namespace: str, name: str, raw: bytes, content_type: str, dry: bool
    ) -> dict[str, Any]:
        current = self.api_get(res, namespace, name)
        return self._save(res, current, apply_patch(res, content_type, current, raw), dry)

    def _save(self, res: Resource, current: dict[str, Any], new: dict[str, Any], dry: bool) -> dict[str, Any]:
        """The update path shared by PUT and PATCH, from rest.BeforeUpdate onwards."""
        new = copy.deepcopy(new) | {"apiVersion": res.api_version, "kind": res.kind}  # kind is the URL's
        meta, cur = new.setdefault("metadata", {}), current["metadata"]
        if meta.get("name") != cur["name"]:
            why = f"the name of the object ({meta.get('name')}) does not match the name on the URL ({cur['name']})"
            raise bad_request(why)
        if meta.setdefault("namespace", cur.get("namespace", "")) != cur.get("namespace", ""):  # empty: the URL's
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not meta["namespace"]:
            del meta["namespace"]
        if meta.get("uid") and meta["uid"] != cur["uid"]:
            why = f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {cur['uid']}"
            raise conflict(res, cur["name"], why)
        if meta.get("resourceVersion") and meta["resourceVersion"] != cur["resourceVersion"]:
            raise conflict(res, cur["name"])
        meta.update(uid=cur["uid"], creationTimestamp=cur["creationTimestamp"], resourceVersion=cur["resourceVersion"])
        if res.status_subresource:  # PrepareForUpdate: status is written through /status only
            new.pop("status", None)
            new.update({"status": copy.deepcopy(current["status"])} if "status" in current else {})
        self._check(res, new, current)
        return self.commit(res, new, current, dry=dry)

    def _check(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if res.plural == "deployments":  # defaulting runs on every write: a replicas removed by a patch comes back 1
            defaults = {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}
            obj["spec"] = defaults | {k: v for k, v in (obj.get("spec") or {}).items() if v is not None}
        check_types(res, obj)
        validate(res, obj, old)
        admit(res, obj, self.max_replicas)

    def api_delete(self, res: Resource, namespace: str, name: str, opts: dict[str, Any], dry: bool) -> dict[str, Any]:
        current = self.api_get(res, namespace, name)
        _preconditions(res, current, opts.get("preconditions") or {})
        if not dry:
            self.remove(res, current, orphan=opts.get("propagationPolicy") == "Orphan")
        if res.return_deleted:
            return current
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.plural}
        details["uid"] = current["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def api_scale(
        self, res: Resource, namespace: str, name: str, verb: str, raw: bytes, content_type: str, dry: bool
    ) -> dict[str, Any]:
        """The scale subresource (autoscaling/v1 Scale) that `kubectl scale` and autoscalers use. It shares the
        workload's resourceVersion, so a stale one conflicts as on the workload itself."""
        current = self.api_get(res, namespace, name)
        if verb == "get":
            return _scale(current)
        scale = (
            decode(raw, content_type, None)
            if verb == "update"
            else apply_patch(res, content_type, _scale(current), raw)
        )
        stale = get_path(scale, "metadata.resourceVersion") not in (None, "", current["metadata"]["resourceVersion"])
        if stale:
            raise conflict(res, name)
        workload = copy.deepcopy(current)
        workload["spec"]["replicas"] = get_path(scale, "spec.replicas")
        if not isinstance(workload["spec"]["replicas"], int):
            raise bad_request("json: cannot unmarshal into Go struct field ScaleSpec.spec.replicas of type int32")
        self._check(res, workload, current)
        return _scale(self.commit(res, workload, current, dry=dry))

    def api_evict(self, namespace: str, name: str, raw: bytes, content_type: str, dry: bool) -> dict[str, Any]:
        """EvictionREST.Create: terminal, pending and terminating pods are deleted without a PDB check; more than one
        matching PDB is a 500; a not-ready pod may go if the budget is currently met (IfHealthyBudget) or the PDB
        says AlwaysAllow; otherwise no disruptionsAllowed left is 429 naming the budget in a DisruptionBudget cause.
        Success is a Status with code 201; the pod is deleted at once (no grace period is modelled)."""
        pods = BY_PLURAL["pods"]
        eviction = decode(raw, content_type, None)
        if eviction.get("kind", "Eviction") != "Eviction" or get_path(eviction, "metadata.name") != name:
            raise bad_request("name in URL does not match name in Eviction object")
        options = eviction.get("deleteOptions") or {}
        dry = dry_run(options.get("dryRun") or [], "DeleteOptions") or dry
        pod = self.api_get(pods, namespace, name)
        phase, terminating = get_path(pod, "status.phase"), get_path(pod, "metadata.deletionTimestamp")
        if phase not in ("Succeeded", "Failed", "Pending") and not terminating:
            labels = pod["metadata"].get("labels")
            pdbs = self.all("poddisruptionbudgets", namespace)
            pdbs = [p for p in pdbs if labels_match(selector_requirements(p["spec"].get("selector")), labels)]
            if len(pdbs) > 1:
                why = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                raise KubeError(500, "", why)
            if pdbs:
                _check_budget(pdbs[0], pod)
        _preconditions(pods, pod, options.get("preconditions") or {})
        if not dry:
            self.remove(pods, pod, orphan=False)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _check_budget(pdb: dict[str, Any], pod: dict[str, Any]) -> None:
    status = pdb.get("status") or {}
    desired, healthy = status.get("desiredHealthy", 0), status.get("currentHealthy", 0)
    policy = get_path(pdb, "spec.unhealthyPodEvictionPolicy")
    if not ko.pod_ready(pod) and (policy == "AlwaysAllow" or healthy >= desired > 0):
        return  # an unready pod does not count towards the budget it would otherwise spend
    if status.get("disruptionsAllowed", 0) <= 0:
        why = (
            f"The disruption budget {pdb['metadata']['name']} needs {desired} healthy pods and has {healthy} currently"
        )
        details = {"causes": [{"reason": "DisruptionBudget", "message": why}], "retryAfterSeconds": 0}
        raise KubeError(429, "TooManyRequests", PDB_VIOLATION, details)


def _scale(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj["metadata"]
    meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")}
    selector = ",".join(f"{k}={v}" for k, v in (get_path(obj, "spec.selector.matchLabels") or {}).items())
    status = {"replicas": get_path(obj, "status.replicas") or 0, "selector": selector}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": status,
    }


def decode(raw: bytes, content_type: str, res: Resource | None) -> dict[str, Any]:
    """A create or update body: JSON (this stand-in's only serializer), of the kind and apiVersion of the URL."""
    if content_type != "application/json":
        accepted = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
        msg = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
        raise KubeError(415, "UnsupportedMediaType", msg)
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"error decoding body: {exc}") from None
    if not isinstance(obj, dict):
        raise bad_request("the body is not a JSON object")
    if res is not None and obj.get("apiVersion", res.api_version) != res.api_version:
        why = f"the API version in the data ({obj['apiVersion']}) does not match the expected API version"
        raise bad_request(f"{why} ({res.api_version})")
    if res is not None and obj.get("kind", res.kind) != res.kind:
        raise bad_request(f"Object 'Kind' is {obj['kind']}, expected {res.kind}")
    return obj


def _preconditions(res: Resource, current: dict[str, Any], pre: dict[str, Any]) -> None:
    """DeleteOptions.preconditions: a compare-and-delete on uid and resourceVersion (409 on mismatch)."""
    meta = current["metadata"]
    for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        if pre.get(key) and pre[key] != meta[key]:
            why = f"Precondition failed: {label} in precondition: {pre[key]}, {label} in object meta: {meta[key]}"
            raise conflict(res, meta["name"], why)
