"""Which resources the Kubernetes API stand-in serves, and how the API server says no: each rule names the real code.

- Errors are `Status` objects (k8s.io/apimachinery/pkg/api/errors): NotFound `pods "x" not found`, Conflict
  `Operation cannot be fulfilled on deployments.apps "x": the object has been modified; ...`, Forbidden naming the
  user, verb, resource, API group and scope as the authorizer does, Invalid (422) `Deployment.apps "x" is invalid:
  <field>: <why>` with one cause per field error, AlreadyExists, BadRequest, UnsupportedMediaType. A resource in a
  group is named `<plural>.<group>` in messages; `details.kind` is the plural, except for Invalid (the Kind).
- dryRun must be exactly `All` (ValidateCreateOptions and its Update/Patch/Delete siblings): any other value is
  422 Invalid on `<Verb>Options.meta.k8s.io`, not silently taken as a real write.
- The resource table says, per kind, what the registry's strategy decides: which field selectors it converts,
  whether it has a status subresource and a generation, whether DELETE answers the object or a Status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

META_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    builtin: bool
    status_subresource: bool = True
    """With a status subresource, writes to the main resource keep the stored status (the strategies'
    PrepareForUpdate), and metadata.generation ignores status changes."""
    has_generation: bool = True
    fields: tuple[str, ...] = META_FIELDS
    return_deleted: bool = False
    """DELETE answers the deleted object (pods, custom resources), not a Status (the registry's ReturnDeletedObject)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


POD_FIELDS = (
    *META_FIELDS,
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
_ALL = [
    Resource("nodes", "Node", "", "v1", False, True, has_generation=False, fields=(*META_FIELDS, "spec.unschedulable")),
    Resource("pods", "Pod", "", "v1", True, True, has_generation=False, fields=POD_FIELDS, return_deleted=True),
    Resource("deployments", "Deployment", "apps", "v1", True, True),
    Resource("replicasets", "ReplicaSet", "apps", "v1", True, True, fields=(*META_FIELDS, "status.replicas")),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, True),
    # Argo CD's Application CRD declares `subresources: {}`: its status is written through the main resource.
    Resource("applications", "Application", "argoproj.io", "v1alpha1", True, False, False, return_deleted=True),
    Resource("kustomizations", "Kustomization", "kustomize.toolkit.fluxcd.io", "v1", True, False, return_deleted=True),
    Resource("helmreleases", "HelmRelease", "helm.toolkit.fluxcd.io", "v2", True, False, return_deleted=True),
]
RESOURCES: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in _ALL}
BY_PLURAL: dict[str, Resource] = {r.plural: r for r in _ALL}


class KubeError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body["message"] = self.message
        body.update({"reason": self.reason} if self.reason else {})
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(res: Resource, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name} if name else {}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res: Resource, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res: Resource, name: str) -> KubeError:
    return KubeError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', _details(res, name))


def conflict(res: Resource, name: str, why: str = "") -> KubeError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    msg = f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}'
    return KubeError(409, "Conflict", msg, _details(res, name))


def forbidden(resource: str, group: str, verb: str, name: str, namespace: str, user: str) -> KubeError:
    """The authorizer's denial (apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage)."""
    qualified = resource.split("/")[0] + (f".{group}" if group else "")
    subject = f'{qualified} "{name}"' if name else qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    msg = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    details: dict[str, Any] = {"name": name} if name else {}
    details.update({"group": group} if group else {})
    details["kind"] = resource.split("/")[0]
    return KubeError(403, "Forbidden", msg, details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def invalid_value(field: str, value: Any, why: str) -> dict[str, str]:
    return cause("FieldValueInvalid", field, f"Invalid value: {json.dumps(value)}: {why}")


def required(field: str) -> dict[str, str]:
    return cause("FieldValueRequired", field, "Required value")


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> KubeError:
    """errors.NewInvalid: one line per field error, bracketed when there are several."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name, **({"group": group} if group else {}), "kind": kind, "causes": causes}
    return KubeError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details)


def unsupported_media(res: Resource) -> KubeError:
    """The patch handler lists what it accepts; strategic merge is offered for built-in types only."""
    types = ["application/json-patch+json", "application/merge-patch+json"]
    if res.builtin:
        types.append("application/strategic-merge-patch+json")
    msg = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(types)
    return KubeError(415, "UnsupportedMediaType", msg)


def dry_run(values: list[str], options_kind: str) -> bool:
    """True for dryRun=All; any other value is refused as ValidateDryRun does, never taken as a real write."""
    if not values:
        return False
    if all(v == "All" for v in values):
        return True
    shown = "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"
    c = cause("FieldValueNotSupported", "dryRun", f'Unsupported value: {shown}: supported values: "All"')
    raise invalid(options_kind, "meta.k8s.io", "", [c])


def get_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def json_kind(value: Any) -> str:
    """How Go's encoding/json names a JSON value's type in its errors."""
    kinds = ((bool, "bool"), (str, "string"), ((int, float), "number"), (dict, "object"), (list, "array"))
    return next((name for t, name in kinds if isinstance(value, t)), "null")
