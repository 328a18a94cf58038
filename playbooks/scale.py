"""scale: set a Deployment's replicas, at most `mitigation.scale.max_step` away from what it has, never over a
concurrent scale (an autoscaler's or a person's).

The guard is on the value, not the whole object: a JSON patch that tests /spec/replicas against the count planned
from before replacing it, which the API server refuses (422) when they differ. A resourceVersion guard would also
refuse every status update the deployment controller made meanwhile, which is constant while pods churn in an
incident. The 422's own message is generic, so the result says what it means.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bot.core.config import ScaleLimits
from bot.core.playbook import Change, Outcome, Plan
from bot.core.ports import Cluster, PatchType
from playbooks._deployments import (
    DeploymentParams,
    DeploymentPlaybook,
    get_deployment,
    guarded,
    rollout_facts,
    spec_replicas,
)

INT32_MAX = 2**31 - 1


class ScaleParams(DeploymentParams):
    replicas: int = Field(ge=0, le=INT32_MAX)


class Scale(DeploymentPlaybook):
    name = "scale"
    summary = "Set a Deployment's replicas, a limited step at a time. Undo: scale back to the count before."
    params = ScaleParams
    usage = "mitigate scale deployment=<name> replicas=N [namespace=default] [cluster=<context>]"
    undo_with = "scale"
    lasting = True

    @property
    def limits(self) -> ScaleLimits:
        return self.config.mitigation.scale

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, ScaleParams)
        deployment = await get_deployment(cluster, params, cluster_name)
        where = f"{params.namespace}/{params.deployment}"
        now, wanted = spec_replicas(deployment), params.replicas
        change = Change(
            target=params.target,
            before={"replicas": str(now)},
            after={"replicas": str(wanted)},
            patch=[
                {"op": "test", "path": "/spec/replicas", "value": now},
                {"op": "replace", "path": "/spec/replicas", "value": wanted},
            ],
            patch_type=PatchType.JSON,
            noop=now == wanted,
        )
        facts = rollout_facts(deployment)
        notes = [f"Now {facts['available']} of {now} replicas available, {facts['updated']} on the current template."]
        if change.noop:
            notes.append(f"Deployment {where} has {now} replicas already.")
        elif wanted == 0:
            notes.append(f"replicas=0: no pod of Deployment {where} will serve until it is scaled up again.")
        refused = []
        if abs(wanted - now) > self.limits.max_step:
            refused.append(
                f"Scaling {where} from {now} to {wanted} changes {abs(wanted - now)} replicas, over the limit of "
                f"{self.limits.max_step} per request; scale in steps or raise mitigation.scale.max_step."
            )
        return self.planned(
            params,
            cluster_name,
            [change],
            notes=notes,
            refused=refused,
        )

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        # Only the test can fail to apply: the replace is of a field the API server always defaults.
        was = change.before["replicas"]
        return await guarded(
            super().apply(cluster, change, dry_run=dry_run, as_user=as_user),
            lambda exc: (
                f"{change.target} no longer has the {was} replicas this plan was made from (an autoscaler or a "
                f"person scaled it since): nothing was written; plan again. {exc}"
            ),
        )

    def undo_extra(self, plan: Plan) -> dict[str, Any]:
        return {"replicas": int(plan.changes[0].before["replicas"])}
