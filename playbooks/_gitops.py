"""What the GitOps playbooks share: Argo CD Applications and Flux Kustomizations / HelmReleases as objects that sync
by themselves, how a sync is paused and resumed, and which objects a request names.

A paused Application keeps its previous spec.syncPolicy, as JSON, in the annotation `firebreak.dev/paused-sync-policy`
on the Application itself, written by the same merge patch that removes automated sync: resume-sync puts it back
exactly (a JSON patch `add` of /spec/syncPolicy, never a merge that would merge maps), whoever asks and whenever, and
the saved state is there for anyone with kubectl to see. Flux objects have one switch, spec.suspend; a pause also
sets Flux's own `suspend.toolkit.fluxcd.io/reason` annotation (what `flux suspend --reason` writes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from bot.core.errors import ClusterError, UsageError
from bot.core.playbook import Change, Outcome, Target
from bot.core.ports import Cluster, ObjectRef, PatchType

SAVED = "firebreak.dev/paused-sync-policy"
FLUX_REASON = "suspend.toolkit.fluxcd.io/reason"
FLUX_NAMESPACE = "flux-system"
"""Where `flux` looks unless told `-n` (its --namespace default), for Kustomizations and HelmReleases alike."""


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    param: str

    @property
    def argo(self) -> bool:
        return self.kind == "Application"


APPLICATION = Kind("Application", "argoproj.io/v1alpha1", "application")
KUSTOMIZATION = Kind("Kustomization", "kustomize.toolkit.fluxcd.io/v1", "kustomization")
HELMRELEASE = Kind("HelmRelease", "helm.toolkit.fluxcd.io/v2", "helmrelease")
KINDS = (APPLICATION, KUSTOMIZATION, HELMRELEASE)
BY_KIND = {k.kind: k for k in KINDS}

Key = tuple[str, str, str]
"""(kind, namespace, name)"""

# ---- the objects ------------------------------------------------------------------------------------------------


def automated(policy: dict[str, Any] | None) -> bool:
    """Argo CD syncs by itself when syncPolicy.automated is set, unless its `enabled` is explicitly false."""
    auto = (policy or {}).get("automated")
    return isinstance(auto, dict) and auto.get("enabled") is not False


def policy_facts(policy: dict[str, Any] | None) -> dict[str, str]:
    policy = policy or {}
    auto = policy.get("automated")
    flags = [f for f in ("prune", "selfHeal", "allowEmpty") if isinstance(auto, dict) and auto.get(f)]
    facts = {"automated": (", ".join(flags) or "on") if automated(policy) else "off"}
    if policy.get("syncOptions"):
        facts["sync options"] = ", ".join(str(o) for o in policy["syncOptions"])
    retry = policy.get("retry")
    if isinstance(retry, dict):
        backoff = retry.get("backoff") or {}
        parts = [
            f"limit {retry['limit']}" if "limit" in retry else "",
            f"backoff {backoff['duration']}" if "duration" in backoff else "",
            f"x{backoff['factor']}" if "factor" in backoff else "",
            f"up to {backoff['maxDuration']}" if "maxDuration" in backoff else "",
        ]
        facts["retry"] = " ".join(p for p in parts if p) or "on"
    return facts


@dataclass(frozen=True)
class GitOps:
    """One Application, Kustomization or HelmRelease, as the API returned it."""

    kind: Kind
    item: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.item.get("metadata") or {})

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace", ""))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.meta.get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.meta.get("annotations") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.item.get("spec") or {})

    @property
    def key(self) -> Key:
        return (self.kind.kind, self.namespace, self.name)

    @property
    def target(self) -> Target:
        return Target(api_version=self.kind.api_version, kind=self.kind.kind, name=self.name, namespace=self.namespace)

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"

    @property
    def policy(self) -> dict[str, Any] | None:
        found = self.spec.get("syncPolicy")
        return dict(found) if isinstance(found, dict) else None

    @property
    def syncing(self) -> bool:
        return automated(self.policy) if self.kind.argo else not self.spec.get("suspend", False)

    @property
    def saved(self) -> str | None:
        """The sync policy a pause saved on this Application, as the raw annotation."""
        return self.annotations.get(SAVED) if self.kind.argo else None

    @property
    def facts(self) -> dict[str, str]:
        if self.kind.argo:
            return policy_facts(self.policy)
        return {"suspend": "no" if self.syncing else "yes"}


def pause_change(obj: GitOps, *, reason: str, phase: int = 0) -> Change:
    """Stop the object syncing by itself, saving an Application's sync policy on it; a paused one is a no-op."""
    if obj.kind.argo:
        policy = obj.policy or {}
        saved = json.dumps(policy, sort_keys=True, separators=(",", ":"))
        patch: dict[str, Any] = {"metadata": {"annotations": {SAVED: saved}}}
        patch["spec"] = {"syncPolicy": {"automated": None}}
        after = policy_facts({k: v for k, v in policy.items() if k != "automated"})
        after["saved policy"] = f"annotation {SAVED}"
    else:
        patch = {"metadata": {"annotations": {FLUX_REASON: reason}}, "spec": {"suspend": True}}
        after = {"suspend": "yes"}
    return Change(
        target=obj.target,
        before=obj.facts,
        after=after,
        patch=patch,
        patch_type=PatchType.MERGE,  # custom resources take no strategic merge patch (415)
        noop=not obj.syncing,
        phase=phase,
    )


def resume_change(obj: GitOps, *, argocd_namespace: str, phase: int = 0) -> Change | str:
    """Put back what a pause saved (an Application's exact sync policy), or un-suspend a Flux object.

    A string says why nothing can be resumed: an Application with automated sync off and no saved policy.
    """
    if not obj.kind.argo:
        patch: dict[str, Any] = {"spec": {"suspend": None}}  # false is `omitempty`: `flux resume` removes it too
        if FLUX_REASON in obj.annotations:
            patch["metadata"] = {"annotations": {FLUX_REASON: None}}
        return Change(
            target=obj.target,
            before=obj.facts,
            after={"suspend": "no"},
            patch=patch,
            patch_type=PatchType.MERGE,
            noop=obj.syncing,
            phase=phase,
        )
    raw = obj.saved
    if raw is None:
        if obj.syncing:
            return Change(target=obj.target, before=obj.facts, after=obj.facts, noop=True, phase=phase)
        return _unsaved(obj, argocd_namespace)
    try:
        policy = json.loads(raw)
    except ValueError:
        policy = None
    if not isinstance(policy, dict):
        return f"{obj}: its {SAVED} annotation is not a saved sync policy (JSON object); fix or remove it by hand."
    pointer = "/metadata/annotations/" + SAVED.replace("~", "~0").replace("/", "~1")
    ops = [
        {"op": "test", "path": pointer, "value": raw},  # nobody resumed or re-paused it since the plan
        {"op": "remove", "path": pointer},
        {"op": "add", "path": "/spec/syncPolicy", "value": policy},  # replaces it whole, exactly as saved
    ]
    return Change(
        target=obj.target,
        before=obj.facts,
        after=policy_facts(policy),
        patch=ops,
        patch_type=PatchType.JSON,
        phase=phase,
    )


def _unsaved(obj: GitOps, argocd_namespace: str) -> str:
    qualified = obj.name if obj.namespace == argocd_namespace else f"{obj.namespace}/{obj.name}"
    return (
        f"{obj} has automated sync off and nothing recorded to restore (no {SAVED} annotation: firebreak did not "
        f"pause it, or the annotation was removed). Re-enable it by hand, e.g. `argocd app set {qualified} "
        f"--sync-policy automated --self-heal --auto-prune`, or in its manifest."
    )


async def apply_resume(cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
    """A resume whose `test` failed because someone resumed the Application since the plan is ALREADY done."""
    assert change.patch_type is not None
    try:
        await cluster.patch(
            change.target.ref, change.patch, patch_type=change.patch_type, dry_run=dry_run, as_user=as_user
        )
    except ClusterError as exc:
        if exc.status != 422 or change.patch_type is not PatchType.JSON:
            raise
        current = await cluster.get(change.target.ref)
        if current is None:
            raise
        now = GitOps(APPLICATION, current)
        if now.saved is None and now.syncing:
            return Outcome.ALREADY
        if now.saved != change.patch[0]["value"]:
            raise ClusterError(
                f"{exc} (its saved sync policy changed since the plan; nothing was written: plan again)",
                status=409,
                reason="Conflict",
            ) from None
        raise
    return Outcome.DONE


# ---- finding them -----------------------------------------------------------------------------------------------


async def fetch(cluster: Cluster, kind: Kind, namespace: str, name: str, cluster_name: str) -> GitOps:
    found = await cluster.get(ObjectRef(kind.api_version, kind.kind, name, namespace))
    if found is None:
        raise UsageError(f"No {kind.kind} {namespace}/{name} in cluster {cluster_name}.")
    return GitOps(kind, found)


async def _list(cluster: Cluster, kind: Kind, selector: str | None) -> list[GitOps] | None:
    """Every namespace (Argo CD serves Applications from any namespace it is told to); None if the cluster has
    no such API (that tool is not installed)."""
    try:
        items = await cluster.list(kind.api_version, kind.kind, label_selector=selector)
    except ClusterError as exc:
        if exc.status == 404:
            return None
        raise
    return [GitOps(kind, item) for item in items]


async def _all(*calls: Coroutine[Any, Any, list[GitOps] | None]) -> list[list[GitOps] | None]:
    """Every call's answer; when one fails, the others still finish (none is left running) and the first error is
    raised."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [a for a in answers if not isinstance(a, BaseException)]


async def select(cluster: Cluster, selector: str, wanted: set[Key]) -> tuple[list[GitOps], list[str]]:
    """The GitOps objects matching `selector`, one LIST per kind; with `wanted`, exactly those objects, with one more
    LIST of a kind whose named objects no longer match. Also notes on kinds this cluster does not serve."""
    kinds = [k for k in KINDS if not wanted or any(w[0] == k.kind for w in wanted)]
    listed = dict(zip(kinds, await _all(*(_list(cluster, k, selector) for k in kinds)), strict=True))
    notes = [
        f"This cluster serves no {k.kind} ({k.api_version}); none were looked for."
        for k, v in listed.items()
        if v is None
    ]
    found = {o.key: o for objs in listed.values() for o in objs or []}
    if wanted:
        short = [k for k in kinds if listed[k] is not None and any(w[0] == k.kind and w not in found for w in wanted)]
        for objs in await _all(*(_list(cluster, k, None) for k in short)):
            found |= {o.key: o for o in objs or [] if o.key in wanted}
        gone = sorted(w for w in wanted if w not in found)
        notes += [f"{k} {ns}/{n} no longer exists; nothing to do for it." for k, ns, n in gone]
        found = {key: o for key, o in found.items() if key in wanted}
    order = {k.kind: i for i, k in enumerate(KINDS)}
    return sorted(found.values(), key=lambda o: (order[o.kind.kind], o.namespace, o.name)), notes


def key_text(target: Target) -> str:
    return f"{target.kind}/{target.namespace}/{target.name}"
