"""cordon: mark nodes unschedulable so no new pods land on them (running pods stay), within blast-radius limits."""

from __future__ import annotations

from typing import Any

from bot.core.config import NodeLimits
from bot.core.playbook import Outcome, Plan, Playbook, Result
from bot.core.ports import Cluster
from playbooks._nodes import NodeParams, blast_radius, fleet, schedulable_changes


class Cordon(Playbook):
    name = "cordon"
    summary = "Stop scheduling onto nodes (by name or pool); running pods stay. Undo: uncordon."
    params = NodeParams
    usage = "mitigate cordon nodes=a,b | pool=<name> [cluster=<context>]"
    undo_with = "uncordon"
    lasting = True

    @property
    def limits(self) -> NodeLimits:
        return self.config.mitigation.nodes

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, NodeParams)
        nodes = await fleet(cluster, self.limits)
        chosen = nodes.pick(params)
        changes = schedulable_changes(chosen, schedulable=False)
        refused, notes = blast_radius(nodes, [n for n in chosen if n.schedulable], self.limits)
        return Plan(
            playbook=self.name,
            cluster=cluster_name,
            params=params.model_dump(exclude_none=True),
            changes=changes,
            notes=notes,
            refused=refused,
        )

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Uncordon exactly the nodes this run cordoned: not those that were cordoned already."""
        done = [r.target.name for r in results if r.outcome is Outcome.DONE]
        if not done:
            return None
        return {"nodes": ",".join(done), "cluster": plan.cluster}
