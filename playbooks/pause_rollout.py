"""pause-rollout: hold a Deployment's rollout (spec.paused), so pod template changes stop rolling out; it still
scales, and pods already replaced stay replaced."""

from __future__ import annotations

from typing import Any

from bot.core.playbook import Plan
from bot.core.ports import Cluster
from playbooks._deployments import (
    DeploymentParams,
    DeploymentPlaybook,
    get_deployment,
    pause_change,
    unfinished_rollout,
)


class PauseRollout(DeploymentPlaybook):
    name = "pause-rollout"
    summary = "Pause a Deployment's rollout: template changes wait until it is resumed. Undo: resume-rollout."
    params = DeploymentParams
    usage = "mitigate pause-rollout deployment=<name> [namespace=default] [cluster=<context>]"
    undo_with = "resume-rollout"
    lasting = True

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, DeploymentParams)
        deployment = await get_deployment(cluster, params, cluster_name)
        change = pause_change(params, deployment, paused=True)
        where = f"{params.namespace}/{params.deployment}"
        if change.noop:
            notes = [f"Deployment {where} is paused already."]
        else:
            notes = [
                "While paused, changes to the pod template (a deploy) do not roll out; scaling still does, "
                "and rollback refuses until it is resumed."
            ]
            held = unfinished_rollout(deployment)
            notes += [f"{held} The rest keep the old one until it is resumed."] if held else []
        return self.planned(
            params,
            cluster_name,
            [change],
            notes=notes,
        )
