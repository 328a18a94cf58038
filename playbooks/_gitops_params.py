"""What a GitOps request names: one Application, Kustomization or HelmRelease, or a label selector over all of them
(checked as the API server would parse it, before any call), and the objects an undo names exactly."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator, model_validator

from bot.core.playbook import Change, Outcome, Params, Plan, Playbook, Result
from playbooks._gitops import BY_KIND, FLUX_NAMESPACE, KINDS, Key, Kind, key_text

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"(?:(?P<prefix>{_SUBDOMAIN.pattern})/)?(?P<name>{_LABEL_NAME})")
_LABEL_VALUE = re.compile(rf"(?:{_LABEL_NAME})?")
_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>(),]+)\s*"
    r"(?:(?P<op>==|!=|=|>|<|in(?=[\s(])|notin(?=[\s(]))\s*(?P<values>.*?))?\s*"
)
_SELECTOR_FORMS = "key, !key, key=value, key!=value, key in (a,b), key notin (a,b)"


def object_name(value: str, what: str) -> str:
    if len(value) > 253 or not _SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes {what} name (lowercase letters, digits, '-' and '.')")
    return value


def namespace_name(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a namespace name (lowercase letters, digits and '-', at most 63)")
    return value


def label_selector(text: str) -> str:
    """A label selector as the API server parses it (labels.Parse), checked before any call; an empty one, which
    would match every GitOps object in the cluster, is refused."""
    if not text.strip():
        raise ValueError("give labels to match, e.g. selector=team=payments (an empty selector would match everything)")
    parts: list[str] = []
    depth, current = 0, ""
    for ch in text:  # commas separate requirements, except inside the parentheses of `in (a,b)`
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts, current = [*parts, current], ""
        else:
            current += ch
    for part in [*parts, current]:
        _requirement(part)
    return text.strip()


def _requirement(part: str) -> None:
    bad = ValueError(f"{part.strip()!r} is not a label requirement ({_SELECTOR_FORMS})")
    m = _REQUIREMENT.fullmatch(part)
    key = _LABEL_KEY.fullmatch(m["key"]) if m else None
    if m is None or key is None or (m["neg"] and m["op"]):
        raise bad
    if len(key["name"]) > 63 or len(key["prefix"] or "") > 253:
        raise ValueError(f"label key {m['key']!r} is too long (name at most 63, prefix at most 253 characters)")
    op, values = m["op"], (m["values"] or "").strip()
    if op in ("in", "notin"):
        if not (values.startswith("(") and values.endswith(")")):
            raise bad
        items = [v.strip() for v in values[1:-1].split(",")]
        if not any(items):
            raise ValueError(f"{part.strip()!r}: '{op}' needs at least one value")
    elif op in (">", "<"):
        if not values.isdigit():
            raise ValueError(f"{part.strip()!r}: '{op}' compares with an integer")
        items = []
    else:
        items = [values] if op else []
    for v in items:
        if len(v) > 63 or not _LABEL_VALUE.fullmatch(v):
            raise ValueError(f"{v!r} is not a label value (letters, digits, '-', '_' and '.', at most 63)")


class SyncParams(Params):
    """Exactly one object: an Argo CD Application or a Flux Kustomization or HelmRelease."""

    application: str | None = None
    kustomization: str | None = None
    helmrelease: str | None = None
    namespace: str | None = None

    @field_validator("application", "kustomization", "helmrelease")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else object_name(v, "object")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        return None if v is None else namespace_name(v)

    @model_validator(mode="after")
    def _one_of(self) -> SyncParams:
        if sum(1 for k in KINDS if getattr(self, k.param)) != 1:
            raise ValueError("name exactly one of application=<name>, kustomization=<name> or helmrelease=<name>")
        return self

    @property
    def kind(self) -> Kind:
        return next(k for k in KINDS if getattr(self, k.param))

    @property
    def object(self) -> str:
        return str(getattr(self, self.kind.param))

    def where(self, argocd_namespace: str) -> str:
        return self.namespace or (argocd_namespace if self.kind.argo else FLUX_NAMESPACE)


class SelectorParams(Params):
    selector: str
    objects: tuple[str, ...] = ()
    """Not in the usage line: `Kind/namespace/name,...`, as an undo names exactly the objects its run changed."""

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        return label_selector(v)

    @field_validator("objects", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return tuple(o.strip() for o in v.split(",") if o.strip()) if isinstance(v, str) else v

    @field_validator("objects")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            parts = item.split("/")
            if len(parts) != 3 or parts[0] not in BY_KIND:
                raise ValueError(f"{item!r} is not Application/<namespace>/<name> (or Kustomization, HelmRelease)")
            namespace_name(parts[1])
            object_name(parts[2], parts[0])
        return v

    @property
    def keys(self) -> set[Key]:
        return {(k, ns, n) for k, ns, n in (item.split("/") for item in self.objects)}


class SelectorPlaybook(Playbook):
    """What freeze and unfreeze share: a selector over GitOps objects, a few writes at a time, and an undo that
    names exactly the objects this run changed (or may have: a call unanswered, or in flight when the process
    died; one never changed is already as the undo wants it, and the undo finds nothing to do for it)."""

    params = SelectorParams

    @property
    def concurrency(self) -> int:
        return 8

    def planned(self, params: Params, cluster_name: str, changes: list[Change], **more: Any) -> Plan:
        """As Playbook.planned, leaving out parameters at their defaults (the hidden `objects=` an undo fills)."""
        kept = params.model_dump(exclude_none=True, exclude_defaults=True)
        return Plan(playbook=self.name, cluster=cluster_name, params=kept, changes=changes, **more)

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        done = [key_text(r.target) for r in results if r.outcome in (Outcome.DONE, Outcome.UNKNOWN)]
        if not done:
            return None
        return {"selector": plan.params["selector"], "objects": ",".join(done), "cluster": plan.cluster}
