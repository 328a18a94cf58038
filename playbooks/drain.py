"""drain: cordon nodes, then evict their pods through the Eviction API as kubectl drain does, waiting out the
PodDisruptionBudgets that refuse (429) for a bounded time; never deleting a pod, never forcing one out.

A plan is three LISTs, however many nodes and pods: the nodes, every pod (filtered here by spec.nodeName) and every
PodDisruptionBudget. DaemonSet pods, mirror pods and finished pods stay, as `kubectl drain --ignore-daemonsets`
leaves them; a pod with no controller would never come back, so it refuses the plan, as kubectl does without --force.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bot.core.config import DrainLimits, IncidentConfig, NodeLimits
from bot.core.errors import ClusterError
from bot.core.playbook import Change, Outcome, Plan, Playbook, Result, Target
from bot.core.ports import Cluster, ObjectRef
from playbooks._nodes import NodeParams, blast_radius, fleet, pool_locks, schedulable_changes, uncordon_params

MIRROR = "kubernetes.io/config.mirror"
"""The kubelet's annotation on the API copy of a static pod: evicting it does nothing, the kubelet owns it."""
FINISHED = ("Succeeded", "Failed")
SHOWN = 10
"""Pods named in one note before the rest are counted."""
IN_FLIGHT = 200
"""Writes of one phase the runner starts at once (it holds a slot per write for the write's whole `apply`): enough
that pods a budget holds back for minutes do not keep the others of a request waiting. The API calls themselves are
capped by `drain.concurrency` inside `apply`, and a pod waiting out a budget holds no call slot while it sleeps."""


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def named(keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector as the Eviction API and the disruption controller apply a PDB's selector:
    no selector selects nothing, an empty one selects every pod of the namespace."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget as its status stood when the plan was made."""

    namespace: str
    name: str
    selector: dict[str, Any] | None
    allowed: int

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Budget:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        allowed = int(status.get("disruptionsAllowed") or 0)  # a budget not yet observed allows nothing
        return cls(meta.get("namespace", ""), meta["name"], spec.get("selector"), allowed)

    def covers(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and selects(self.selector, pod.labels)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def shown(self) -> str:
        return f"{self} ({plural(self.allowed, 'disruption')} allowed)"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    owner: tuple[str, str] | None
    """The controller's (kind, name): the ownerReference with controller=true."""
    mirror: bool
    finished: bool
    empty_dir: bool

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Pod:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            node=spec.get("nodeName", ""),
            labels=meta.get("labels") or {},
            owner=(ref["kind"], ref["name"]) if ref else None,
            mirror=MIRROR in (meta.get("annotations") or {}),
            finished=(obj.get("status") or {}).get("phase") in FINISHED,
            empty_dir=any("emptyDir" in v for v in spec.get("volumes") or []),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def target(self) -> Target:
        return Target(api_version="v1", kind="Pod", name=self.name, namespace=self.namespace)


@dataclass
class Triage:
    """The pods on the chosen nodes, sorted as kubectl drain's filters sort them."""

    evict: list[Pod]
    unmanaged: list[Pod]
    left: Counter[str]
    """Pods left where they are, by why: DaemonSet, mirror, finished."""

    @classmethod
    def of(cls, pods: list[Pod]) -> Triage:
        evict, unmanaged, left = [], [], Counter[str]()
        for pod in pods:
            if pod.finished:
                left["finished pod"] += 1
            elif pod.owner is not None and pod.owner[0] == "DaemonSet":
                left["DaemonSet pod"] += 1
            elif pod.mirror:
                left["mirror (static) pod"] += 1
            elif pod.owner is None:
                unmanaged.append(pod)
            else:
                evict.append(pod)
        return cls(evict, unmanaged, left)


class Drain(Playbook):
    name = "drain"
    summary = "Cordon nodes (by name or pool), then evict their pods, honouring PodDisruptionBudgets. Undo: uncordon."
    params = NodeParams
    usage = "mitigate drain nodes=a,b | pool=<name> [cluster=<context>]"
    undo_with = "uncordon"
    lasting = True

    def __init__(self, config: IncidentConfig) -> None:
        super().__init__(config)
        self._calls: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @property
    def limits(self) -> NodeLimits:
        return self.config.mitigation.nodes

    @property
    def waits(self) -> DrainLimits:
        return self.config.mitigation.drain

    @property
    def concurrency(self) -> int:
        return IN_FLIGHT

    def _gate(self) -> asyncio.Semaphore:
        """The cap on this worker's drain API calls in flight (`drain.concurrency`), shared by its runs and dry runs;
        one per event loop, since a semaphore that has made a waiter belongs to its loop."""
        loop = asyncio.get_running_loop()
        if self._calls is None or self._calls[0] is not loop:
            self._calls = (loop, asyncio.Semaphore(self.waits.concurrency))
        return self._calls[1]

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, NodeParams)
        nodes = await fleet(cluster, self.limits)
        chosen = nodes.pick(params)
        async with asyncio.TaskGroup() as tg:  # a failed LIST cancels the other rather than leaving it running
            listing_pods = tg.create_task(cluster.list("v1", "Pod"))
            listing_budgets = tg.create_task(cluster.list("policy/v1", "PodDisruptionBudget"))
        order = {n.name: i for i, n in enumerate(chosen)}
        pods = sorted(
            (p for p in map(Pod.of, listing_pods.result()) if p.node in order),
            key=lambda p: (order[p.node], p.namespace, p.name),
        )
        budgets = [Budget.of(b) for b in listing_budgets.result()]
        triage = Triage.of(pods)
        covering = {p.key: [b for b in budgets if b.covers(p)] for p in triage.evict}
        # Every chosen node counts, cordoned already or not: each is a node whose pods this request moves.
        refused, notes = blast_radius(nodes, chosen, self.limits)
        if triage.unmanaged:
            refused.append(
                f"{plural(len(triage.unmanaged), 'pod')} with no controller would not come back once evicted: "
                f"{named([p.key for p in triage.unmanaged])}. Cordon instead, or delete those pods by hand "
                "(they are gone for good) and drain again."
            )
        notes += self._pod_notes(triage, covering)
        changes = schedulable_changes(chosen, schedulable=False)
        changes += [self._eviction(p, covering[p.key]) for p in triage.evict]
        return self.planned(
            params,
            cluster_name,
            changes,
            notes=notes,
            refused=refused,
            locks=pool_locks(chosen),
        )

    @staticmethod
    def _eviction(pod: Pod, budgets: list[Budget]) -> Change:
        assert pod.owner is not None
        facts = {"node": pod.node, "owner": f"{pod.owner[0]}/{pod.owner[1]}"}
        node = Target(api_version="v1", kind="Node", name=pod.node)
        return Change(
            target=pod.target,
            before=facts | {"evicted": "no"},
            after=facts | {"evicted": "yes"},
            evict=True,
            phase=1,
            # The approval is for the nodes: pods that come or go before it runs ask for no new approval, and the
            # run evicts whatever the re-plan finds on them, as kubectl drain evicts what is there when it runs.
            gating=False,
            # A pod is evicted only from a node that was cordoned, or its replacement may land on the same node;
            # kubectl drain stops for a node whose cordon failed.
            needs=(str(node),),
            # Allowed disruptions move as pods come and go: shown, but a change in them asks for no new approval.
            context={"budget": ", ".join(b.shown for b in budgets) or "none"},
        )

    def _pod_notes(self, triage: Triage, covering: dict[str, list[Budget]]) -> list[str]:
        notes = []
        if triage.left:
            kinds = ", ".join(plural(n, why) for why, n in sorted(triage.left.items()))
            notes.append(f"Left in place, as kubectl drain leaves them: {kinds}.")
        lost = [p.key for p in triage.evict if p.empty_dir]
        if lost:
            notes.append(f"Local data in emptyDir volumes is lost when these pods are evicted: {named(lost)}.")
        doubled = [f"{key} ({', '.join(b.name for b in bs)})" for key, bs in covering.items() if len(bs) > 1]
        if doubled:
            notes.append(
                "The Eviction API refuses pods that more than one PodDisruptionBudget covers (500), so these stay "
                f"until the budgets are fixed: {named(doubled)}."
            )
        evicting = Counter(str(b) for bs in covering.values() if len(bs) == 1 for b in bs)
        budgets = {str(b): b for bs in covering.values() for b in bs}
        for key in sorted(evicting):
            b, count = budgets[key], evicting[key]
            head = f"PodDisruptionBudget {b}: this drain evicts {plural(count, 'pod')} it covers"
            if count <= b.allowed:
                notes.append(f"{head}; it allows {plural(b.allowed, 'disruption')} now.")
            else:
                notes.append(
                    f"{head} but allows {plural(b.allowed, 'disruption')} now: evictions past that wait for "
                    f"replacements to be Ready, each for up to {self.waits.pdb_wait_seconds:g} s, then fail."
                )
        return notes

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        """An eviction is retried while a PodDisruptionBudget refuses it (429), as kubectl drain retries, until
        `pdb_wait_seconds` after the first refusal; a dry run asks once. A pod already gone is ALREADY; nothing is
        deleted. Each call takes a slot of `drain.concurrency`, and the wait between tries holds none."""
        if not change.evict:
            async with self._gate():
                return await super().apply(cluster, change, dry_run=dry_run, as_user=as_user)
        ref = change.target.ref
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            try:
                async with self._gate():
                    await cluster.evict(ref, dry_run=dry_run, as_user=as_user)
            except ClusterError as exc:
                if exc.status == 404 and f'pods "{ref.name}" not found' in str(exc):
                    return Outcome.ALREADY
                if exc.status != 429:
                    raise
                if dry_run:  # one attempt: say which budget refuses it now, from the plan's facts
                    budget = change.context.get("budget", "none")
                    why = f"PodDisruptionBudget {budget} refuses it now" if budget != "none" else "refused now"
                    raise ClusterError(f"{why}: {exc}", status=429, reason=exc.reason) from None
                if deadline is None:
                    deadline = loop.time() + self.waits.pdb_wait_seconds
                left = deadline - loop.time()
                if left <= 0:
                    return await self._give_up(cluster, ref, exc)
                await asyncio.sleep(min(self.waits.retry_seconds, left))
            else:
                return Outcome.DONE

    async def _give_up(self, cluster: Cluster, ref: ObjectRef, last: ClusterError) -> Outcome:
        """Raise naming the budgets that kept refusing, as they stand now: one GET and one LIST, only for a pod
        that waited the whole time. A pod that went meanwhile (its owner scaled it away) is ALREADY."""
        waited = f"{self.waits.pdb_wait_seconds:g} s"
        try:
            async with self._gate():
                found = await cluster.get(ref)
                listed = await cluster.list("policy/v1", "PodDisruptionBudget", namespace=ref.namespace)
        except ClusterError:
            raise ClusterError(f"evictions refused for {waited}: {last}", status=429, reason=last.reason) from None
        if found is None:
            return Outcome.ALREADY
        pod = Pod.of(found)
        budgets = ", ".join(b.shown for b in map(Budget.of, listed) if b.covers(pod))
        why = f"blocked by PodDisruptionBudget {budgets}" if budgets else "evictions refused"
        raise ClusterError(f"{why} for {waited}: {last}", status=429, reason=last.reason)

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Uncordon the nodes this run cordoned; evicted pods are not brought back (their owners made replacements
        elsewhere)."""
        return uncordon_params(plan, results)
