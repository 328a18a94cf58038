"""What node playbooks share: which nodes a request names (by name or by pool), their facts, and the limits.

One LIST of the cluster's nodes serves the whole plan, however many nodes it names (no call per node).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import field_validator, model_validator

from bot.core.config import NodeLimits
from bot.core.errors import UsageError
from bot.core.playbook import Change, Params, Target
from bot.core.ports import Cluster, PatchType


class NodeParams(Params):
    nodes: tuple[str, ...] = ()
    """Comma-separated node names."""
    pool: str | None = None

    @field_validator("nodes", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return tuple(n.strip() for n in v.split(",") if n.strip()) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_of(self) -> NodeParams:
        if bool(self.nodes) == bool(self.pool):
            raise ValueError("name either nodes=a,b,c or pool=<name>")
        return self


@dataclass(frozen=True)
class Node:
    name: str
    pool: str
    ready: bool
    schedulable: bool

    @property
    def target(self) -> Target:
        return Target(api_version="v1", kind="Node", name=self.name)

    @property
    def facts(self) -> dict[str, str]:
        return {
            "pool": self.pool or "(none)",
            "ready": "yes" if self.ready else "no",
            "schedulable": "yes" if self.schedulable else "no",
        }


@dataclass(frozen=True)
class Fleet:
    """Every node of the cluster, with the pool label this cluster uses."""

    nodes: list[Node]
    pool_label: str | None

    def pick(self, params: NodeParams) -> list[Node]:
        if params.pool:
            if self.pool_label is None:
                raise UsageError("These nodes carry none of the configured pool labels; name the nodes instead.")
            chosen = [n for n in self.nodes if n.pool == params.pool]
            if not chosen:
                pools = ", ".join(sorted({n.pool for n in self.nodes if n.pool})) or "none"
                raise UsageError(f"No nodes in pool {params.pool!r} ({self.pool_label}); pools here: {pools}.")
            return chosen
        known = {n.name: n for n in self.nodes}
        missing = [name for name in params.nodes if name not in known]
        if missing:
            raise UsageError(f"No such node: {', '.join(missing)}.")
        return [known[name] for name in dict.fromkeys(params.nodes)]

    def pool_size(self) -> Counter[str]:
        return Counter(n.pool for n in self.nodes)

    def ready_schedulable(self) -> Counter[str]:
        return Counter(n.pool for n in self.nodes if n.ready and n.schedulable)


async def fleet(cluster: Cluster, limits: NodeLimits) -> Fleet:
    items = await cluster.list("v1", "Node")
    labels = [item["metadata"].get("labels") or {} for item in items]
    pool_label = next((key for key in limits.pool_labels if any(key in lbl for lbl in labels)), None)
    nodes = []
    for item, lbl in zip(items, labels, strict=True):
        conditions = (item.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        schedulable = not (item.get("spec") or {}).get("unschedulable", False)
        pool = lbl.get(pool_label, "") if pool_label else ""
        nodes.append(Node(item["metadata"]["name"], pool, ready, schedulable))
    return Fleet(sorted(nodes, key=lambda n: n.name), pool_label)


def schedulable_changes(nodes: list[Node], *, schedulable: bool) -> list[Change]:
    """Set each node's schedulability, as kubectl cordon/uncordon patch it; nodes already so are no-ops."""
    patch = {"spec": {"unschedulable": True}} if not schedulable else {"spec": {"unschedulable": None}}
    want = "yes" if schedulable else "no"
    return [
        Change(
            target=n.target,
            before=n.facts,
            after=n.facts | {"schedulable": want},
            patch=patch,
            patch_type=PatchType.STRATEGIC,
            noop=n.schedulable == schedulable,
        )
        for n in nodes
    ]


def too_many(count: int, limits: NodeLimits) -> list[str]:
    if count > limits.max_nodes:
        return [f"{count} nodes is over the limit of {limits.max_nodes} per request; split it or raise the limit."]
    return []


def blast_radius(fleet: Fleet, taking: list[Node], limits: NodeLimits) -> tuple[list[str], list[str]]:
    """What taking `taking` out of scheduling does to their pools: refusals with the numbers, and notes.

    Refused: more nodes than one request may take, more than a pool's share, or fewer Ready schedulable nodes
    left in a pool than the minimum. A node that is already unschedulable is not counted twice in what remains.
    """
    refused = too_many(len(taking), limits)
    sizes, left = fleet.pool_size(), fleet.ready_schedulable()
    notes = []
    for pool in sorted({n.pool for n in taking}):
        in_pool = [n for n in taking if n.pool == pool]
        remaining = left[pool] - sum(1 for n in in_pool if n.ready and n.schedulable)
        label = pool or "(no pool)"
        if len(in_pool) / sizes[pool] > limits.max_pool_fraction:
            refused.append(
                f"pool {label}: {len(in_pool)} of {sizes[pool]} nodes is over the limit of "
                f"{limits.max_pool_fraction:.0%} of a pool."
            )
        if remaining < limits.min_ready_left:
            refused.append(
                f"pool {label}: only {remaining} Ready schedulable node(s) would remain; "
                f"at least {limits.min_ready_left} must."
            )
        notes.append(f"pool {label}: {remaining} of {sizes[pool]} nodes Ready and schedulable after this.")
    return refused, notes
