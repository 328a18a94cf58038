"""rollback: put a Deployment's pod template back to an earlier revision, as `kubectl rollout undo` does.

The history is the Deployment's ReplicaSets (one LIST with its selector, kept if it is their controller), numbered
by their `deployment.kubernetes.io/revision` annotation. The write replaces spec.template with the chosen
ReplicaSet's (its pod-template-hash label removed) and the annotations with kubectl's selection, in a JSON patch
that first tests the metadata.generation planned from: a Deployment whose spec changed since (a deploy) is refused
(422), never overwritten. Not the resourceVersion: the deployment controller moves that with every status update,
constantly while pods churn in an incident, and a guard on it would refuse for no conflict at all. The deployment
controller then reuses that ReplicaSet as the newest revision, so the replaced revision keeps its number and the undo
is a rollback to it.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from bot.core.errors import UsageError
from bot.core.playbook import Change, Outcome, Plan
from bot.core.ports import Cluster, PatchType
from playbooks._deployments import (
    API_VERSION,
    DeploymentParams,
    DeploymentPlaybook,
    generation,
    get_deployment,
    guarded,
    is_paused,
    label_selector,
)

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
# kubectl's annotationsToSkip: kept from the Deployment, never copied from the ReplicaSet.
KEEP_FROM_DEPLOYMENT = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
MAX_DIFFERENCES = 8


class RollbackParams(DeploymentParams):
    revision: int | None = Field(default=None, ge=1)
    """The revision to restore; the one before the current when omitted."""


class Rollback(DeploymentPlaybook):
    name = "rollback"
    summary = "Restore a Deployment's previous pod template (or revision=N), as kubectl rollout undo does."
    params = RollbackParams
    usage = "mitigate rollback deployment=<name> [revision=N] [namespace=default] [cluster=<context>]"
    undo_with = "rollback"
    lasting = False  # a rollback is a new revision, not a state that stays until undone

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, RollbackParams)
        deployment = await get_deployment(cluster, params, cluster_name)
        history = await revisions(cluster, deployment)
        where = f"{params.namespace}/{params.deployment}"
        current = max(history, default=0)
        wanted = params.revision or max((r for r in history if r < current), default=None)
        if wanted is None:
            only = f"revision {current} is its only one" if history else "it has no ReplicaSets yet"
            raise UsageError(f"No rollout history for Deployment {where}: {only}.")
        if wanted not in history:
            known = ", ".join(f"{r} (current)" if r == current else str(r) for r in sorted(history)) or "none"
            raise UsageError(f"Deployment {where} has no revision {wanted}; its revisions: {known}.")
        template = without_hash(history[wanted]["spec"]["template"])
        ours = deployment["spec"]["template"]
        noop = normal(template) == normal(without_hash(ours))
        before = {"revision": str(current)} | images(ours, images(template))
        after = {"revision": str(wanted) if noop else f"{wanted} (restored as {current + 1})"}
        after |= images(template, images(ours))
        notes = []
        if noop:
            notes.append(f"The current pod template already matches revision {wanted}: nothing to roll back.")
        elif other := differences(ours, template):
            notes.append("Also restored: " + ", ".join(other) + ".")
        refused = []
        if is_paused(deployment):
            refused.append(f"Deployment {where} is paused: resume it first (resume-rollout), then roll back.")
        change = Change(
            target=params.target,
            before=before,
            after=after,
            # Only the test can fail to apply: the template is always there, and `add` of the annotations replaces
            # them whole whether or not the Deployment has any.
            patch=[
                {"op": "test", "path": "/metadata/generation", "value": generation(deployment)},
                {"op": "replace", "path": "/spec/template", "value": template},
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": restored_annotations(deployment, history[wanted]),
                },
            ],
            patch_type=PatchType.JSON,
            noop=noop,
        )
        return self.planned(
            params,
            cluster_name,
            [change],
            notes=notes,
            refused=refused,
        )

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        return await guarded(
            super().apply(cluster, change, dry_run=dry_run, as_user=as_user),
            lambda exc: (
                f"{change.target} changed since this plan was made (a deploy, a scale, a rollback or an annotation "
                f"by someone else: its metadata.generation is no longer {change.patch[0]['value']}): nothing was "
                f"written; plan again. {exc}"
            ),
        )

    def undo_extra(self, plan: Plan) -> dict[str, Any]:
        """The replaced revision keeps its number (the restored one becomes the newest), so that is the undo's."""
        return {"revision": int(plan.changes[0].before["revision"])}


async def revisions(cluster: Cluster, deployment: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The Deployment's ReplicaSets by revision: one LIST with its selector, kept where it is their controller
    (deploymentutil.ListReplicaSets); one whose revision annotation is not a number is skipped, as kubectl does."""
    meta = deployment["metadata"]
    found = await cluster.list(
        API_VERSION,
        "ReplicaSet",
        namespace=meta["namespace"],
        label_selector=label_selector(deployment["spec"].get("selector")),
    )
    history: dict[int, dict[str, Any]] = {}
    for rs in found:
        refs = rs["metadata"].get("ownerReferences") or []
        if not any(r.get("controller") and r.get("uid") == meta["uid"] for r in refs):
            continue
        value = (rs["metadata"].get("annotations") or {}).get(REVISION, "0")
        if value.isdigit():
            history[int(value)] = rs
    return history


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the pod-template-hash label the controller adds to its ReplicaSets' copies."""
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def normal(value: Any) -> Any:
    """For comparing templates as apiequality.Semantic.DeepEqual does: an empty map or list equals an absent one."""
    if isinstance(value, dict):
        kept = {k: normal(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def restored_annotations(deployment: dict[str, Any], replicaset: dict[str, Any]) -> dict[str, str]:
    """kubectl's: the bookkeeping annotations stay the Deployment's, every other one comes from the ReplicaSet."""
    ours = deployment["metadata"].get("annotations") or {}
    theirs = replicaset["metadata"].get("annotations") or {}
    kept = {k: v for k, v in ours.items() if k in KEEP_FROM_DEPLOYMENT}
    return kept | {k: v for k, v in theirs.items() if k not in KEEP_FROM_DEPLOYMENT}


def images(template: dict[str, Any], other: dict[str, str] | None = None) -> dict[str, str]:
    """`image <container>` per container (`init image <container>` for init containers); a container only the
    other template has is shown as absent, so before and after name the same containers."""
    spec = template.get("spec") or {}
    found = {f"image {c['name']}": str(c.get("image", "")) for c in spec.get("containers") or []}
    found |= {f"init image {c['name']}": str(c.get("image", "")) for c in spec.get("initContainers") or []}
    return {key: found.get(key, "(none)") for key in sorted(set(found) | set(other or {}))}


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where two pod templates differ besides their images and hash label, as paths (containers by name)."""
    found: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        if x == y:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                walk(x.get(key), y.get(key), f"{path}.{key}" if path else key)
        elif path in ("spec.containers", "spec.initContainers") and isinstance(x, list) and isinstance(y, list):
            xs, ys = ({c.get("name"): c for c in side if isinstance(c, dict)} for side in (x, y))
            for name in sorted(set(xs) | set(ys), key=str):
                walk(_no_image(xs.get(name)), _no_image(ys.get(name)), f"{path}[{name}]")
        else:
            found.append(path)

    walk(normal(without_hash(a)), normal(without_hash(b)), "")
    if len(found) > MAX_DIFFERENCES:
        return [*found[:MAX_DIFFERENCES], f"and {len(found) - MAX_DIFFERENCES} more"]
    return found


def _no_image(container: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if container is None else {k: v for k, v in container.items() if k != "image"}
