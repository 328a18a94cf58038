"""resume-rollout: let a paused Deployment roll out again (the undo of pause-rollout); a pod template changed while
it was paused starts rolling out at once."""

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


class ResumeRollout(DeploymentPlaybook):
    name = "resume-rollout"
    summary = "Resume a paused Deployment's rollout; a template changed meanwhile rolls out. Undo: pause-rollout."
    params = DeploymentParams
    usage = "mitigate resume-rollout deployment=<name> [namespace=default] [cluster=<context>]"
    undo_with = "pause-rollout"

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, DeploymentParams)
        deployment = await get_deployment(cluster, params, cluster_name)
        change = pause_change(params, deployment, paused=False)
        notes = [f"Deployment {params.namespace}/{params.deployment} is not paused."] if change.noop else []
        held = unfinished_rollout(deployment)
        if held and not change.noop:
            notes.append(f"{held} Resuming rolls it out to the rest now.")
        return self.planned(
            params,
            cluster_name,
            [change],
            notes=notes,
        )
