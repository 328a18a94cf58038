"""The clusters bench/playbooks.py plans against, its Kubernetes stand-in in a process of its own, and its call counts.

`python -m bench._cluster --port P` serves tests/kube_standin.py seeded with one `Shape` (given as CLI flags), so
its CPU time is not firebreak's event loop's; GET /_bench/calls answers the requests it served, by verb, resource
and dry run, and POST /_bench/calls forgets them (neither is counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.kube_standin import KubeRequest, KubeStandIn

BENCH_PATH = "/_bench/calls"
OTHER_NODES = 5
"""Nodes in a pool no request names, so a LIST of nodes returns more than it picks."""

Calls = Counter[tuple[str, str, bool]]
"""(verb, resource, dry run) -> requests served."""


@dataclass(frozen=True)
class Shape:
    """What the cluster holds: a pool of `cordon_nodes` to cordon, and a pool of `drain_nodes` each running
    `pods_per_node` pods of `pods_per_node` Deployments (one ReplicaSet-owned replica of each per node) spread over
    three namespaces, a third of them covered by PodDisruptionBudgets that allow every eviction."""

    cordon_nodes: int = 0
    drain_nodes: int = 0
    pods_per_node: int = 30


def seed(kube: KubeStandIn, shape: Shape) -> None:
    for i in range(shape.cordon_nodes):
        kube.add_node(f"big-{i:03d}", pool="big")
    for i in range(OTHER_NODES):
        kube.add_node(f"general-{i}", pool="general")
    nodes = [f"drain-{i:02d}" for i in range(shape.drain_nodes)]
    for name in nodes:
        kube.add_node(name, pool="drain")
    for d in range(shape.pods_per_node if nodes else 0):
        app, namespace = f"app-{d:02d}", f"team-{d % 3}"
        kube.add_deployment(app, namespace, replicas=len(nodes), nodes=nodes)
        # The stand-in makes no replacement pods, so a budget that allows the drain allows every eviction:
        # half say so as minAvailable 0, half as maxUnavailable 100% (percentages count the controllers' scale).
        if d % 3 == 0:
            bound = {"min_available": 0} if d % 2 else {"max_unavailable": "100%"}
            kube.add_pdb(app, namespace, match_labels={"app": app}, **bound)


def count(requests: Iterable[KubeRequest]) -> Calls:
    return Counter((r.verb, r.resource, r.query.get("dryRun") == "All") for r in requests)


VERBS = ("list", "get", "patch", "create", "update", "delete")


def shown(calls: Calls) -> str:
    """`list nodes 1, patch nodes 600 (300 dry run), ...`: by verb, then resource."""
    total, dry = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
    for (verb, res, is_dry), n in calls.items():
        total[(verb, res)] += n
        dry[(verb, res)] += n if is_dry else 0
    order = sorted(total, key=lambda k: (VERBS.index(k[0]) if k[0] in VERBS else len(VERBS), k))
    return ", ".join(
        f"{v} {r} {total[(v, r)]}" + (f" ({dry[(v, r)]} dry run)" if dry[(v, r)] else "") for v, r in order
    )


class Served:
    """The stand-in in another process, as the bench sees it: its URL, and the calls it served."""

    def __init__(self, url: str, proc: asyncio.subprocess.Process) -> None:
        self.url, self.proc = url, proc

    async def calls(self, *, reset: bool = False) -> Calls:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + BENCH_PATH) as resp:
                rows = await resp.json()
            if reset:
                async with session.post(self.url + BENCH_PATH) as resp:
                    await resp.read()
        return Counter({(r["verb"], r["resource"], r["dry"]): r["n"] for r in rows})

    def write_kubeconfig(self, path: Path, *, context: str) -> Path:
        client_side = KubeStandIn()
        client_side.url = self.url
        return client_side.write_kubeconfig(path, context=context)

    async def stop(self) -> None:
        self.proc.terminate()
        await self.proc.wait()


class Counting(KubeStandIn):
    """The stand-in with the bench's own door, which is not counted as a call."""

    async def _serve(self, request: web.Request) -> web.Response:
        if request.path != BENCH_PATH:
            return await super()._serve(request)
        if request.method == "POST":
            self.requests.clear()
            return web.json_response([])
        rows = [{"verb": v, "resource": r, "dry": d, "n": n} for (v, r, d), n in count(self.requests).items()]
        return web.json_response(rows)


async def serve(shape: Shape, port: int) -> None:
    kube = Counting()
    seed(kube, shape)
    await kube.start(port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(json.dumps({"url": kube.url}), flush=True)
    await stop.wait()
    await kube.stop()


async def start(shape: Shape) -> Served:
    """The stand-in in a process of its own, seeded with `shape`, once it serves."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in asdict(shape).items()]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._cluster", *flags, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line:
        raise RuntimeError("the Kubernetes stand-in process exited before serving")
    return Served(json.loads(line)["url"], proc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cordon-nodes", type=int, default=0)
    parser.add_argument("--drain-nodes", type=int, default=0)
    parser.add_argument("--pods-per-node", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(serve(Shape(args.cordon_nodes, args.drain_nodes, args.pods_per_node), args.port))
