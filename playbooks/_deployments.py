"""What the Deployment playbooks share: their parameters, the one GET of the Deployment, the facts an operator
reads off it (rollout state), the pause patch, and the undo that names the same Deployment.

Guarding a write against a concurrent change is each playbook's own choice: rollback tests the metadata.generation
it planned from (a deploy made meanwhile is refused, never dropped; the controller's status updates are not); scale
tests the replica count it planned from (an autoscaler's scale is refused, a status update is not). Neither guards on
the resourceVersion, which every status update moves, constantly while pods churn in an incident.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationInfo, field_validator

from bot.core.errors import ClusterError, UsageError
from bot.core.playbook import Change, Outcome, Params, Plan, Playbook, Result, Target
from bot.core.ports import Cluster, PatchType

API_VERSION, KIND = "apps/v1", "Deployment"
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
NAMES = {"deployment": (re.compile(rf"{DNS_LABEL}(\.{DNS_LABEL})*"), 253), "namespace": (re.compile(DNS_LABEL), 63)}
"""What the API server accepts as a Deployment name (RFC 1123 subdomain) and a namespace (RFC 1123 label); checked
before any request, so a `/` can never change the path a request goes to."""


class DeploymentParams(Params):
    deployment: str
    namespace: str = "default"

    @field_validator("deployment", "namespace")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        shape, longest = NAMES[str(info.field_name)]
        if len(v) > longest or not shape.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a {info.field_name} name (lowercase letters, digits and '-'"
                f"{', dots between them' if info.field_name == 'deployment' else ''}; at most {longest} characters)"
            )
        return v

    @property
    def target(self) -> Target:
        return Target(api_version=API_VERSION, kind=KIND, name=self.deployment, namespace=self.namespace)


async def get_deployment(cluster: Cluster, params: DeploymentParams, cluster_name: str) -> dict[str, Any]:
    """The Deployment as the API server has it now (one GET); a UsageError naming it when there is none."""
    found = await cluster.get(params.target.ref)
    if found is None:
        raise UsageError(f"No Deployment {params.namespace}/{params.deployment} in cluster {cluster_name}.")
    return found


def spec_replicas(deployment: dict[str, Any]) -> int:
    """spec.replicas, which the API server defaults to 1."""
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def is_paused(deployment: dict[str, Any]) -> bool:
    return bool((deployment.get("spec") or {}).get("paused"))


def rollout_facts(deployment: dict[str, Any]) -> dict[str, str]:
    """How far the rollout got: desired, updated (running the current template) and available replicas, from the
    deployment controller's status. They move by themselves (pods start and fail, an autoscaler scales), so a change
    shows them as context, never as what was approved."""
    status = deployment.get("status") or {}
    return {
        "replicas": str(spec_replicas(deployment)),
        "updated": str(status.get("updatedReplicas") or 0),
        "available": str(status.get("availableReplicas") or 0),
    }


def generation(deployment: dict[str, Any]) -> int:
    """metadata.generation: the API server bumps it when the spec (or, for a Deployment, its annotations) changes,
    never for status."""
    return int(deployment["metadata"]["generation"])


def label_selector(selector: dict[str, Any] | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): the list query that selects what the selector object does."""
    selector = selector or {}
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(sorted(expr.get("values") or []))
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(op, f"!{key}")
        )
    return ",".join(parts)


def unfinished_rollout(deployment: dict[str, Any]) -> str | None:
    """A note when fewer replicas run the current pod template than are wanted (a rollout under way or held)."""
    facts = rollout_facts(deployment)
    if int(facts["updated"]) >= int(facts["replicas"]):
        return None
    return f"Only {facts['updated']} of {facts['replicas']} replicas run the current pod template."


def pause_change(params: DeploymentParams, deployment: dict[str, Any], *, paused: bool) -> Change:
    """Set spec.paused as `kubectl rollout pause` / `resume` patch it (strategic merge; false is omitted, as the
    API omits it); a Deployment already so is a no-op. Setting it twice is harmless, so the write is not guarded.
    Only `paused` is approved; the replica counts are shown beside it."""
    return Change(
        target=params.target,
        before={"paused": "yes" if is_paused(deployment) else "no"},
        after={"paused": "yes" if paused else "no"},
        patch={"spec": {"paused": True if paused else None}},
        patch_type=PatchType.STRATEGIC,
        noop=is_paused(deployment) == paused,
        context=rollout_facts(deployment),
    )


class DeploymentPlaybook(Playbook):
    """A playbook that changes one Deployment; its undo names the same Deployment (plus `undo_extra`)."""

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """A write whose outcome is unknown (unanswered, or in flight when the process died) may have landed, so it
        gets an undo too: on a Deployment the write never reached, each of these undoes finds nothing to change and
        its plan says so. pause/resume-rollout: the Deployment is still paused or not as it was. scale: it still has
        the replicas planned from, which the undo sets. rollback: the undo restores the revision that was current,
        whose template is still the current one. Anything else that moved meanwhile (an autoscaler, a deploy) shows in
        the undo's own plan, which is approved like any other."""
        done = [r for r in results if r.outcome in (Outcome.DONE, Outcome.UNKNOWN)]
        if not done or not plan.changes:
            return None
        target = done[0].target
        extra = self.undo_extra(plan)
        return {"deployment": target.name, "namespace": target.namespace, **extra, "cluster": plan.cluster}

    def undo_extra(self, plan: Plan) -> dict[str, Any]:
        """Parameters besides the Deployment that the undo needs (the revision replaced, the replicas before)."""
        return {}


JSON_PATCH_REFUSED = "the server rejected our request due to an error in our request"
"""The message of the 422 a JSON patch that does not apply gets (patch.go's NewGenericServerResponse)."""


async def guarded(write: Awaitable[Outcome], refused: Callable[[ClusterError], str]) -> Outcome:
    """A JSON patch guarded by a `test` op: a real API server answers a failed test with a vague 422, which
    becomes `refused`'s words (what changed since the plan). Any other refusal is the API's own."""
    try:
        return await write
    except ClusterError as exc:
        if exc.status != 422 or JSON_PATCH_REFUSED not in str(exc):
            raise
        raise ClusterError(refused(exc), status=exc.status, reason=exc.reason) from None
