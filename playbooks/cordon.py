"""cordon: mark nodes unschedulable so no new pods land on them (running pods stay), within blast-radius limits."""

from __future__ import annotations

from typing import Any

from bot.core.config import NodeLimits
from bot.core.playbook import Outcome, Plan, Playbook, Result
from bot.core.ports import Cluster
from playbooks._nodes import NodeParams, fleet, schedulable_changes, too_many


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
        cordoning = [n for n in chosen if n.schedulable]
        refused = too_many(len(cordoning), self.limits)
        sizes, left = nodes.pool_size(), nodes.ready_schedulable()
        notes = []
        for pool in sorted({n.pool for n in cordoning}):
            taking = sum(1 for n in cordoning if n.pool == pool)
            remaining = left[pool] - sum(1 for n in cordoning if n.pool == pool and n.ready)
            share = taking / sizes[pool]
            label = pool or "(no pool)"
            if share > self.limits.max_pool_fraction:
                refused.append(
                    f"pool {label}: {taking} of {sizes[pool]} nodes is over the limit of "
                    f"{self.limits.max_pool_fraction:.0%} of a pool."
                )
            if remaining < self.limits.min_ready_left:
                refused.append(
                    f"pool {label}: only {remaining} Ready schedulable node(s) would remain; "
                    f"at least {self.limits.min_ready_left} must."
                )
            notes.append(f"pool {label}: {remaining} of {sizes[pool]} nodes Ready and schedulable after this.")
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
