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
from bot.core.playbook import Change, Outcome, Params, Plan, Result, Target
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
        """What a node playbook changes or is approved on: schedulable, and the pool whose limits apply."""
        return {"pool": self.pool_shown, "schedulable": "yes" if self.schedulable else "no"}

    @property
    def condition(self) -> dict[str, str]:
        """Shown beside the change but outside the approval: a flapping kubelet moves Ready on its own, and a plan
        approved for a node that went NotReady and back is still the plan people approved. (The pool limits that
        count Ready nodes refuse the plan instead, and a refusal is part of what is approved.)"""
        return {"ready": "yes" if self.ready else "no"}

    @property
    def pool_shown(self) -> str:
        return self.pool or "(none)"

    @property
    def lock(self) -> str:
        """The name a run holds while it takes this node's pool's capacity (see `pool_locks`)."""
        return f"pool:{self.pool_shown}"


@dataclass(frozen=True)
class Fleet:
    """Every node of the cluster, with the pool label this cluster uses."""

    nodes: list[Node]
    pool_label: str | None

    def pick(self, params: NodeParams, *, missing_ok: bool = False) -> list[Node]:
        """The nodes the request names; a name the cluster does not have is an error unless `missing_ok`."""
        if params.pool:
            if self.pool_label is None:
                raise UsageError("These nodes carry none of the configured pool labels; name the nodes instead.")
            chosen = [n for n in self.nodes if n.pool == params.pool]
            if not chosen:
                pools = ", ".join(sorted({n.pool for n in self.nodes if n.pool})) or "none"
                raise UsageError(f"No nodes in pool {params.pool!r} ({self.pool_label}); pools here: {pools}.")
            return chosen
        known = {n.name: n for n in self.nodes}
        missing = self.missing(params)
        if missing and not missing_ok:
            raise UsageError(f"No such node: {', '.join(missing)}.")
        return [known[name] for name in dict.fromkeys(params.nodes) if name in known]

    def missing(self, params: NodeParams) -> list[str]:
        """The named nodes this cluster does not have (a typo, or a node deleted since: scaled away, replaced)."""
        known = {n.name for n in self.nodes}
        return [name for name in dict.fromkeys(params.nodes) if name not in known]

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
            context=n.condition,
        )
        for n in nodes
    ]


def pool_locks(taking: list[Node]) -> list[str]:
    """One lock per pool the request takes nodes from: the runner holds these besides the nodes themselves, so two
    requests planned side by side, each leaving a pool its last spare Ready node, cannot both run at once."""
    return sorted({n.lock for n in taking})


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


def uncordon_params(plan: Plan, results: list[Result]) -> dict[str, Any] | None:
    """What uncordons exactly the nodes a cordon or drain run cordoned, not those that were cordoned already.

    A cordon whose outcome is unknown (its call went unanswered, or was in flight when the process died) counts: if
    it never landed, the node is schedulable as it was, and uncordoning it writes nothing. `missing_ok`: a node
    deleted since (scaled away, replaced) is skipped with a note rather than failing the whole undo."""
    maybe = (Outcome.DONE, Outcome.UNKNOWN)
    nodes = [r.target.name for r in results if r.target.kind == "Node" and r.outcome in maybe]
    if not nodes:
        return None
    return {"nodes": ",".join(nodes), "missing_ok": True, "cluster": plan.cluster}
