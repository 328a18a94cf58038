"""What the Kubernetes API server validates on a write, for the fields mitigation playbooks touch.

- Types: built-ins decode into Go structs, so a wrong JSON type is a 400 from the decoder (`json: cannot unmarshal
  string into Go struct field DeploymentSpec.spec.replicas of type int32`); custom resources are checked against
  the CRD's structural schema (422 `spec.suspend in body must be of type boolean`).
- ValidateCreate / ValidateUpdate (422 Invalid, one cause per field): names are RFC 1123 subdomains, label keys and
  values are valid; deployments and replicasets have replicas >= 0, a non-empty selector that matches the template's
  labels and cannot change (apps/v1 made it immutable), and containers each with a name and an image; a PDB sets
  minAvailable or maxUnavailable, not both.
- Admission: an optional ValidatingAdmissionPolicy capping replicas, as platforms install (422 with the policy's
  message; the API server itself sets no upper bound below int32).
"""

from __future__ import annotations

import re
from typing import Any

from tests.kube_rules import (
    KubeError,
    Resource,
    bad_request,
    cause,
    get_path,
    invalid,
    invalid_value,
    json_kind,
    required,
)
from tests.kube_select import LABEL_KEY, LABEL_VALUE, labels_match, selector_requirements

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# Fields the decoder (built-ins: Go types) or the CRD's structural schema (custom resources) types strictly.
TYPED: dict[str, list[tuple[str, type]]] = {
    "Node": [("spec.unschedulable", bool)],
    "Deployment": [("spec.replicas", int), ("spec.paused", bool)],
    "ReplicaSet": [("spec.replicas", int)],
    "Application": [("spec.syncPolicy.automated.prune", bool), ("spec.syncPolicy.automated.selfHeal", bool)],
    "Kustomization": [("spec.suspend", bool)],
    "HelmRelease": [("spec.suspend", bool)],
}


def check_types(res: Resource, obj: dict[str, Any]) -> None:
    """Built-ins decode into Go structs (a wrong JSON type is a 400 from the decoder); custom resources are
    checked against the CRD's structural schema (a 422 naming the expected type)."""
    meta = obj.get("metadata") or {}
    for key in ("labels", "annotations"):
        bad = next((v for v in (meta.get(key) or {}).values() if not isinstance(v, str)), None)
        if bad is not None:
            kind = json_kind(bad)
            raise bad_request(
                f"json: cannot unmarshal {kind} into Go struct field ObjectMeta.metadata.{key} of type string"
            )
    for path, typ in TYPED.get(res.kind, []):
        value = get_path(obj, path)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if value is None or (isinstance(value, bool) if typ is bool else is_int):
            continue
        kind = json_kind(value)
        if res.builtin:
            go = "bool" if typ is bool else "int32"
            raise bad_request(f"json: cannot unmarshal {kind} into Go struct field {res.kind}Spec.{path} of type {go}")
        expected = "boolean" if typ is bool else "integer"
        why = f'Invalid value: "{kind}": {path} in body must be of type {expected}: "{kind}"'
        raise invalid(res.kind, res.group, meta.get("name", ""), [cause("FieldValueTypeInvalid", path, why)])


def validate(res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The kind's ValidateCreate / ValidateUpdate, for the fields mitigations touch."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    causes: list[dict[str, str]] = []
    if old is None and (len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name)):
        why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        causes.append(
            invalid_value("metadata.name", name, why + "and must start and end with an alphanumeric character")
        )
    for key, value in (meta.get("labels") or {}).items():
        if not LABEL_KEY.fullmatch(key):
            causes.append(invalid_value("metadata.labels", key, "name part must consist of alphanumeric characters"))
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            causes.append(
                invalid_value(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    spec = obj.get("spec") or {}
    if res.kind in ("Deployment", "ReplicaSet"):
        causes += _workload(spec, (old or {}).get("spec"))
    if res.kind == "PodDisruptionBudget" and "minAvailable" in spec and "maxUnavailable" in spec:
        causes.append(invalid_value("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    if causes:
        raise invalid(res.kind, res.group, name, causes)


def _workload(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    replicas = spec.get("replicas")
    if replicas is not None and replicas < 0:
        causes.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not selector:
        causes.append(required("spec.selector"))
    elif not selector_requirements(selector):
        causes.append(invalid_value("spec.selector", selector, "empty selector is invalid for deployment"))
    else:
        labels = get_path(spec, "template.metadata.labels")
        if not labels_match(selector_requirements(selector), labels):
            why = "`selector` does not match template `labels`"
            causes.append(invalid_value("spec.template.metadata.labels", labels, why))
        if old_spec is not None and old_spec.get("selector") != selector:  # apps/v1 made the selector immutable
            causes.append(invalid_value("spec.selector", selector, "field is immutable"))
    containers = get_path(spec, "template.spec.containers") or []
    if not containers:
        causes.append(required("spec.template.spec.containers"))
    for i, container in enumerate(containers):
        causes += [
            required(f"spec.template.spec.containers[{i}].{f}") for f in ("name", "image") if not container.get(f)
        ]
    return causes


def admit(res: Resource, obj: dict[str, Any], max_replicas: int | None) -> None:
    """A ValidatingAdmissionPolicy capping replicas, as platforms install: denial is 422 Invalid with the policy's
    message (the API server itself sets no upper bound below int32)."""
    replicas = get_path(obj, "spec.replicas")
    if max_replicas is None or res.kind not in ("Deployment", "ReplicaSet") or not isinstance(replicas, int):
        return
    if replicas > max_replicas:
        name = get_path(obj, "metadata.name")
        msg = (
            f"{res.qualified} \"{name}\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding "
            f"'max-replicas-binding' denied request: failed expression: object.spec.replicas <= {max_replicas}"
        )
        raise KubeError(422, "Invalid", msg, {"name": name, "group": res.group, "kind": res.plural})
