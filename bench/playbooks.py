"""Node playbooks at scale: a 300-node cordon and a 20-node, 600-pod drain against the Kubernetes stand-in.

Direct: each playbook planned (its LISTs, then the API server's dry run of every write) and run through
Playbook.plan/check/run and the real Kubernetes adapter, against the stand-in in this process; each again at a
small size (3 nodes; 1 node with 30 pods) to show that LISTs stay constant and every other call is one per object
changed. Through the bot: both again as people do it (`/incident mitigate ...` in an incident channel, Approve
clicked by someone else, every API call a recorded step in a real redis-server), with the stand-in in a process of
its own so its CPU time is not counted as firebreak's, while another process sends signed `/incident status`
commands at a steady rate and times their acks, and a task in firebreak's event loop records how late a 10 ms
sleep wakes. Targets, each printed PASS or FAIL; the bench exits 1 when one is missed:
- the 300-node cordon plans (LIST and dry run) in under 1 s;
- a plan's LISTs are as many at 300 nodes (600 pods) as at 3 nodes (30 pods), and each other call is one per
  object changed (its dry run in the plan, its write in the run), with every object done;
- other slash commands are acked within 50 ms at p99 while the playbooks run through the bot.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import _cluster as cluster
from bench._bot import ACK_RATE, BotRun, Window, through_the_bot
from bot.adapters.kubernetes import KubeClusters
from bot.core.config import IncidentConfig, MitigationConfig, NodeLimits
from bot.core.playbook import Outcome
from playbooks import discover
from tests.kube_standin import KubeStandIn

PLAN_TARGET_S = 1.0
ACK_P99_TARGET_MS = 50.0
LIMITS = NodeLimits(max_nodes=300, max_pool_fraction=1.0, min_ready_left=0)
"""A 300-node pool taken whole: one request may change 300 nodes, all of a pool, leaving none Ready."""
CONFIG = IncidentConfig(mitigation=MitigationConfig(nodes=LIMITS))


@dataclass
class Direct:
    label: str
    writes: int
    plan_s: float
    run_s: float
    plan_calls: cluster.Calls
    run_calls: cluster.Calls
    outcomes: Counter[str]

    @property
    def lists(self) -> int:
        return sum(n for (verb, _, _), n in self.plan_calls.items() if verb == "list")

    def others(self, calls: cluster.Calls) -> int:
        return sum(n for (verb, _, _), n in calls.items() if verb != "list")


async def direct(label: str, playbook_name: str, text: str, shape: cluster.Shape, tmp: Path) -> Direct:
    """Plan (with the dry run, as the core's make_plan does) and run one playbook, timing each and counting calls."""
    kube = KubeStandIn()
    cluster.seed(kube, shape)
    await kube.start()
    clusters = KubeClusters(kube.write_kubeconfig(tmp / f"{label}.kubeconfig", context="prod"))
    try:
        api = await clusters.get("prod")
        await api.list("v1", "Node")  # the client's connection is made before the clock starts
        kube.requests.clear()
        playbook, params = discover(CONFIG).parse(playbook_name, text)
        started = time.perf_counter()
        plan = await playbook.plan(api, params, cluster_name=api.name)
        if plan.refused:
            raise RuntimeError(f"{label}: refused: {plan.refused}")
        plan = await playbook.check(api, plan)
        planned = time.perf_counter()
        plan_calls, mark = cluster.count(kube.requests), len(kube.requests)
        results = await playbook.run(api, plan)
        ran = time.perf_counter()
        if plan.dry_run:
            raise RuntimeError(f"{label}: the dry run refused {plan.dry_run[:3]}")
    finally:
        await clusters.close()
        await kube.stop()
    outcomes = Counter(r.outcome.value for r in results)
    run_calls = cluster.count(kube.requests[mark:])
    return Direct(label, len(plan.writes), planned - started, ran - planned, plan_calls, run_calls, outcomes)


def report_direct(runs: list[Direct]) -> list[tuple[str, bool, str]]:
    print("direct: Playbook.plan + check (the dry run of every write), then run, through the real Kubernetes adapter")
    print("(client connected beforehand); the stand-in in this process. calls/write: dry runs + writes, per write")
    print(f"{'':28}{'writes':>8}{'plan s':>9}{'run s':>9}{'LISTs':>7}{'calls/write':>13}  outcomes")
    for d in runs:
        per = f"{d.others(d.plan_calls) / d.writes:.2f}+{d.others(d.run_calls) / d.writes:.2f}"
        done = ", ".join(f"{n} {o}" for o, n in d.outcomes.items())
        print(f"{d.label:28}{d.writes:8}{d.plan_s:9.3f}{d.run_s:9.3f}{d.lists:7}{per:>13}  {done}")
    for d in runs:
        print(f"  {d.label}: plan: {cluster.shown(d.plan_calls)}")
        print(f"  {d.label}: run: {cluster.shown(d.run_calls)}")
    by = {d.label: d for d in runs}
    big_cordon = by["cordon 300 nodes"]
    checks = [
        ("plan of the 300-node cordon < 1 s", big_cordon.plan_s < PLAN_TARGET_S, f"{big_cordon.plan_s:.3f} s"),
    ]
    for small, big in (("cordon 3 nodes", "cordon 300 nodes"), ("drain 1 node, 30 pods", "drain 20 nodes, 600 pods")):
        s, b = by[small], by[big]
        lists_ok = s.lists == b.lists and not any(v == "list" for v, _, _ in b.run_calls)
        checks.append((f"LISTs constant: {small} vs {big.split(' ')[1]}", lists_ok, f"{s.lists} vs {b.lists}"))
        linear = all(d.others(d.plan_calls) == d.writes == d.others(d.run_calls) for d in (s, b))
        shown = f"{s.others(s.plan_calls) + s.others(s.run_calls)} for {s.writes}, "
        shown += f"{b.others(b.plan_calls) + b.others(b.run_calls)} for {b.writes}"
        checks.append((f"other calls = 2 per write (dry run + write): {big.split(',')[0]}", linear, shown))
    all_done = all(set(d.outcomes) == {Outcome.DONE.value} for d in runs)
    checks.append(("every object done", all_done, "; ".join(f"{d.label}: {dict(d.outcomes)}" for d in runs)))
    return checks


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report_bot(runs: list[BotRun], idle: Window) -> list[tuple[str, bool, str]]:
    print()
    print("through the bot: /incident mitigate, Approve by another user, each call a recorded step in Redis; the")
    print("Kubernetes stand-in in its own process (its CPU is not firebreak's), the Slack stand-in in firebreak's;")
    print(f"/incident status sent at {ACK_RATE:g}/s and acks timed by another process; loop: lateness of a 10 ms")
    print("sleep in firebreak's event loop; gc: full collections in the window (count, longest), which stop the loop")
    head = f"{'':34}{'s':>6}{'acks':>6}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    print(f"{head}{'loop late p99 ms':>18}{'max ms':>8}{'gc':>4}{'max ms':>8}")
    for w in [idle, *(w for r in runs for w in (r.plan, r.run))]:
        ms, late = [1000 * s for s in w.acks], [1000 * s for s in w.lateness]
        row = f"{w.seconds:6.2f}{len(ms):6}{pct(ms, 0.5):8.1f}{pct(ms, 0.99):8.1f}{max(ms, default=0):8.1f}"
        gcs = f"{len(w.gc_pauses):4}{1000 * max(w.gc_pauses, default=0):8.1f}"
        print(f"{w.label:34}{row}{pct(late, 0.99):18.1f}{max(late, default=0):8.1f}{gcs}")
    for r in runs:
        print(
            f"  {r.label}: calls (the run plans again, LISTs and dry run, before it writes): {cluster.shown(r.calls)}"
        )
        print(f"  {r.label}: {r.outcome}")
    running = [1000 * s for r in runs for s in r.run.acks]
    p99 = pct(running, 0.99)
    failed = sum(w.failed for w in [idle, *(w for r in runs for w in (r.plan, r.run))])
    return [
        (f"acks while playbooks run: p99 < {ACK_P99_TARGET_MS:.0f} ms", p99 < ACK_P99_TARGET_MS, f"{p99:.1f} ms"),
        ("every ack 200", failed == 0, f"{failed} not 200"),
        ("every object done through the bot", all(r.done for r in runs), "; ".join(r.outcome for r in runs)),
    ]


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = [
            ("cordon 3 nodes", "cordon", "pool=big", cluster.Shape(cordon_nodes=3)),
            ("cordon 300 nodes", "cordon", "pool=big", cluster.Shape(cordon_nodes=300)),
            ("drain 1 node, 30 pods", "drain", "pool=drain", cluster.Shape(drain_nodes=1)),
            ("drain 20 nodes, 600 pods", "drain", "pool=drain", cluster.Shape(drain_nodes=20)),
        ]
        runs = [await direct(label, name, text, shape, Path(tmp)) for label, name, text, shape in scenarios]
        checks = report_direct(runs)
        config = json.dumps({"mitigation": {"nodes": LIMITS.model_dump(exclude={"pool_labels"})}})
        asks = [("cordon 300 nodes", "cordon pool=big"), ("drain 20 nodes, 600 pods", "drain pool=drain")]
        shape = cluster.Shape(cordon_nodes=300, drain_nodes=20)
        bot_runs, idle = await through_the_bot(asks, shape, config, Path(tmp))
        checks += report_bot(bot_runs, idle)
    print()
    for what, ok, shown in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {shown}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
