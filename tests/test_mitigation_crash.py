"""kill -9 in the middle of a mitigation run: the restarted bot reports what was and was not done, and repeats
no API call. A real `firebreak serve` process acts on the Kubernetes stand-in; the stand-in holds one node's
write in flight, the test SIGKILLs firebreak right then and starts another."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis

from tests.conftest import free_port
from tests.harness import eventually, sign
from tests.kube_standin import KubeRequest, KubeStandIn
from tests.slack_standin import Channel, SlackStandIn
from tests.test_crash_recovery import SLUG, command, declare, only_scheduled, queue_empty, serve


def keyed(channel: Channel, suffix: str) -> list[dict[str, Any]]:
    return [
        m
        for m in channel.messages
        if str((m.get("metadata") or {}).get("event_payload", {}).get("key", "")).endswith(suffix)
    ]


async def only_expiries_left(redis_url: str) -> None:
    """Every job done but the request's expiry, which is due in 15 minutes."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:

        async def done() -> bool:
            return await only_scheduled(client)

        await eventually(done, within=20, what="jobs never finished")
    finally:
        await client.aclose()


def real_node_writes(kube: KubeStandIn) -> list[str]:
    return [r.name for r in kube.calls("patch", "nodes") if r.query.get("dryRun") != "All"]


async def approve(port: int, slack: SlackStandIn, channel: Channel, message: dict[str, Any], user: str) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T00000001"},
        "user": {"id": user},
        "api_app_id": "A00000001",
        "channel": {"id": channel.id},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel.id},
        "message": {"ts": message["ts"]},
        "trigger_id": "trig-approve-crash",
        "response_url": slack.response_url("approve-crash"),
        "actions": [{"type": "button", "action_id": "fb_mit_approve", "value": "1:1", "action_ts": "9.1"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    url = f"http://127.0.0.1:{port}/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200


async def test_kill_mid_run_reports_what_was_done_and_repeats_nothing(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path
) -> None:
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100")
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    env = {"FIREBREAK_KUBECONFIG": str(kubeconfig), "FIREBREAK_KUBE_CONTEXT": "prod"}

    def second_write(r: KubeRequest) -> bool:
        return r.name == "a100-1" and r.query.get("dryRun") != "All"

    port = free_port()
    async with serve(slack, redis_url, tmp_path, port, **env) as first:
        await declare(port, slack)
        await queue_empty(redis_url)
        channel = next(c for c in slack.channels.values() if SLUG in c.name)
        await command(port, slack, "mitigate cordon nodes=a100-0,a100-1,a100-2", channel.id, "trig-mitigate")
        await eventually(lambda: keyed(channel, ":mitigation1"), within=15, what="the plan was never posted")
        kube.delay("patch", "nodes", 300, when=second_write)
        await approve(port, slack, channel, keyed(channel, ":mitigation1")[0], "UBOB")
        await eventually(
            lambda: "a100-1" in real_node_writes(kube), within=15, what="the run never reached the second node"
        )
        first.send_signal(signal.SIGKILL)
        await first.wait()

    async with serve(slack, redis_url, tmp_path, free_port(), **env):
        await eventually(lambda: keyed(channel, ":result1"), within=20, what="the interruption was never reported")
        await only_expiries_left(redis_url)

    assert real_node_writes(kube) == ["a100-0", "a100-1"], "nothing repeated, nothing past the crash"
    assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") is True
    assert not kube.get("nodes", "a100-2")["spec"].get("unschedulable")
    (result,) = keyed(channel, ":result1")
    shown = json.dumps(result["blocks"])
    assert "1 done, 1 unknown" in shown and "1 step(s) finished, 1 in flight" in shown and "1 not started" in shown
    assert "Node/a100-1` unknown: in flight when it stopped" in shown
    undo = [e for b in result["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in undo] == ["fb_mit_undo"], "what was done can be undone"
    (plan,) = keyed(channel, ":mitigation1")
    assert "interrupted" in json.dumps(plan["blocks"]) and "fb_mit_approve" not in json.dumps(plan["blocks"])
