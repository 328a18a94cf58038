"""cordon: mark nodes unschedulable so no new pods land on them (running pods stay), within blast-radius limits."""

from __future__ import annotations

from typing import Any

from bot.core.config import NodeLimits
from bot.core.playbook import Plan, Playbook, Result
from bot.core.ports import Cluster
from playbooks._nodes import NodeParams, blast_radius, fleet, pool_locks, schedulable_changes, uncordon_params


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
        taking = [n for n in chosen if n.schedulable]
        refused, notes = blast_radius(nodes, taking, self.limits)
        return self.planned(
            params,
            cluster_name,
            changes,
            notes=notes,
            refused=refused,
            locks=pool_locks(taking),
        )

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        return uncordon_params(plan, results)
