"""uncordon: let pods be scheduled onto nodes again (the undo of cordon and drain)."""

from __future__ import annotations

from typing import Any

from bot.core.config import NodeLimits
from bot.core.playbook import Plan, Playbook
from bot.core.ports import Cluster
from playbooks._nodes import NodeParams, fleet, schedulable_changes, too_many


class UncordonParams(NodeParams):
    missing_ok: bool | None = None
    """Set by the undo of cordon and drain, not in the usage line: a named node the cluster no longer has (deleted
    since it was cordoned) is skipped with a note. Typed by a person, an unknown name is still an error (a typo)."""


class Uncordon(Playbook):
    name = "uncordon"
    summary = "Allow scheduling onto nodes again (by name or pool)."
    params = UncordonParams
    usage = "mitigate uncordon nodes=a,b | pool=<name> [cluster=<context>]"
    undo_with = "cordon"

    @property
    def limits(self) -> NodeLimits:
        return self.config.mitigation.nodes

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, UncordonParams)
        nodes = await fleet(cluster, self.limits)
        chosen = nodes.pick(params, missing_ok=bool(params.missing_ok))
        gone = nodes.missing(params) if params.missing_ok else []
        changes = schedulable_changes(chosen, schedulable=True)
        return self.planned(
            params,
            cluster_name,
            changes,
            notes=[f"Node {name} no longer exists; nothing to do for it." for name in gone],
            refused=too_many(sum(1 for c in changes if not c.noop), self.limits),
        )
