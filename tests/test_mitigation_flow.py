"""Mitigations end to end: signed slash commands and button clicks through the real endpoint, the Slack stand-in,
a real Redis and the Kubernetes stand-in. Request, plan, approval by someone else, run, result, undo, and every
refusal on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.jobs import Op
from bot.models import MitigationState
from tests.harness import Harness
from tests.kube_standin import KubeStandIn
from tests.mitigation_driver import (
    buttons,
    click,
    declare,
    firebreak_with_cluster,
    mitigate,
    plan_message,
    result_message,
    text_of,
)
from tests.slack_standin import SlackStandIn

APPROVE, REJECT, UNDO = "fb_mit_approve", "fb_mit_reject", "fb_mit_undo"


def seed(kube: KubeStandIn) -> None:
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100")
    kube.add_node("cpu-0", pool="general")


def unschedulable(kube: KubeStandIn, name: str) -> bool:
    return bool(kube.get("nodes", name)["spec"].get("unschedulable"))


def node_writes(kube: KubeStandIn) -> list[str]:
    """Node patches that were not dry runs."""
    return [r.name for r in kube.calls("patch", "nodes") if r.query.get("dryRun") != "All"]


@pytest.fixture
async def bot(slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[Harness]:
    seed(kube)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as h:
        yield h


async def test_request_approve_run_and_undo(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))
    reply = await mitigate(bot, inc, "cordon nodes=a100-0,a100-1")
    assert "Plan M1 posted" in reply
    plan = plan_message(bot, inc, "M1")
    shown = text_of(plan)
    assert "`Node/a100-0`: schedulable yes → *no*" in shown and "pool a100" in shown
    assert "`Node/a100-1`" in shown and "already so, skipped" in shown
    assert "accepted a dry run of all 1 write(s)" in shown
    assert set(buttons(plan)) == {APPROVE, REJECT}
    assert node_writes(kube) == [] and not unschedulable(kube, "a100-0")  # the dry run changed nothing

    assert "someone else must approve" in await click(bot, inc, plan, APPROVE, "UALICE")
    assert node_writes(kube) == []

    assert "Approved M1" in await click(bot, inc, plan, APPROVE, "UBOB")
    assert unschedulable(kube, "a100-0") and node_writes(kube) == ["a100-0"]
    m1 = await bot.fb.service.mitigation.get(inc.id, 1)
    assert m1.state is MitigationState.DONE and [r.outcome.value for r in m1.results] == ["done", "already"]
    plan = plan_message(bot, inc, "M1")
    assert buttons(plan) == {} and "Done: 1 done, 1 already" in text_of(plan)
    result = result_message(bot, inc, "M1")
    assert "`Node/a100-0` done" in text_of(result) and set(buttons(result)) == {UNDO}

    # A late second click (or a Slack retry, or another replica) runs nothing again.
    assert "no longer act" in await click(bot, inc, plan, APPROVE, "UCAROL", value=f"{inc.id}:1")
    assert node_writes(kube) == ["a100-0"]

    incident = await bot.fb.service.get(inc.id)
    assert [(a.number, a.playbook) for a in incident.active] == [(1, "cordon")]
    summary = bot.slack.channels[inc.channel_id or ""].messages[0]
    assert "Mitigations in force" in text_of(summary)

    # Undo uncordons exactly what M1 cordoned (not a100-1, cordoned before), through the same approval.
    assert "Plan M2 posted" in await click(bot, inc, result, UNDO, "UCAROL")
    undo_plan = plan_message(bot, inc, "M2")
    assert "undoes M1" in text_of(undo_plan) and "a100-1" not in text_of(undo_plan)
    assert "asked for already" in await click(bot, inc, result, UNDO, "UDAVE")
    await click(bot, inc, undo_plan, APPROVE, "UALICE")
    assert not unschedulable(kube, "a100-0") and unschedulable(kube, "a100-1")
    assert (await bot.fb.service.get(inc.id)).active == ()

    kinds = [(e.payload.kind.value, getattr(e.payload, "action", "")) for e in await bot.fb.service.timeline(inc.id)]
    for action in ("requested", "approved", "started", "call", "done", "active"):
        assert ("mitigation", action) in kinds, action
    await bot.run("timeline", user="UALICE", channel=inc.channel_id or "")
    shown = str(bot.slack.responses[-1]["blocks"])
    assert "*M1* `cordon`: 1 API call(s)" in shown and "*M2* `uncordon`: 1 API call(s)" in shown
    audit = await bot.fb.service.mitigation.audit_log(inc.id, limit=100)
    calls = [(e.number, e.target, e.outcome) for e in audit if e.action == "call"]
    assert (1, "Node/a100-0", "done") in calls and (2, "Node/a100-0", "done") in calls


async def test_reject_and_refusals(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    assert ":warning: name either nodes=a,b,c or pool=<name>" in await mitigate(bot, inc, "cordon")
    assert "Usage: `/incident mitigate cordon" in bot.last_reply()
    assert "There is no playbook 'reboot'" in await mitigate(bot, inc, "reboot nodes=a")
    assert "No such node: nope" in await mitigate(bot, inc, "cordon nodes=nope")

    # Over the blast radius: refused with the numbers, and no Approve button to press.
    await mitigate(bot, inc, "cordon pool=a100")
    refused = plan_message(bot, inc, "M1")
    assert "over the limit" in text_of(refused) and buttons(refused) == {}
    assert "refused" in await click(bot, inc, refused, APPROVE, "UBOB", value=f"{inc.id}:1")

    await mitigate(bot, inc, "cordon nodes=a100-2")
    plan = plan_message(bot, inc, "M2")
    assert "Rejected M2" in await click(bot, inc, plan, REJECT, "UBOB")
    assert buttons(plan_message(bot, inc, "M2")) == {}
    assert "rejected" in await click(bot, inc, plan, APPROVE, "UCAROL", value=f"{inc.id}:2")
    assert node_writes(kube) == []


async def test_expired_request_cannot_run(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    plan = plan_message(bot, inc, "M1")
    assert await bot.fb.queue.exists(f"mitigation-expire:{inc.id}:1:0")  # its buttons go even if nobody clicks
    bot.clock.advance(minutes=16)
    assert "expired" in await click(bot, inc, plan, APPROVE, "UBOB")
    assert buttons(plan_message(bot, inc, "M1")) == {} and node_writes(kube) == []
    assert "Expired" in text_of(plan_message(bot, inc, "M1"))

    # The expiry job, when it comes due, finds the request decided already and changes nothing.
    await bot.fb.service.mitigation.expire(inc.id, 1, Op.fresh())
    assert (await bot.fb.service.mitigation.get(inc.id, 1)).state is MitigationState.EXPIRED


async def test_expiry_job_removes_the_buttons(bot: Harness) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    bot.clock.advance(minutes=15)
    await bot.fb.service.mitigation.expire(inc.id, 1, Op("job:mitigation-expire:test"))
    assert buttons(plan_message(bot, inc, "M1")) == {}
    assert "Expired" in text_of(plan_message(bot, inc, "M1"))


async def test_changed_since_the_plan_asks_again(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-0,a100-1")
    # Someone cordons a100-1 by hand between the plan and the approval.
    kube.change("nodes", "a100-1", "", lambda n: n["spec"].update(unschedulable=True))
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    m1 = await bot.fb.service.mitigation.get(inc.id, 1)
    assert m1.state is MitigationState.SUPERSEDED and m1.next_plan == 2
    assert node_writes(kube) == []
    assert "the new plan is M2" in text_of(plan_message(bot, inc, "M1"))
    new = plan_message(bot, inc, "M2")
    assert "already so, skipped" in text_of(new) and set(buttons(new)) == {APPROVE, REJECT}
    await click(bot, inc, new, APPROVE, "UBOB")
    assert node_writes(kube) == ["a100-0"]


async def test_lists_audit_and_resolve_prompt(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    listing = await mitigate(bot, inc, "")
    assert "`cordon`" in listing and "`uncordon`" in listing
    await bot.run("mitigations", user="UALICE", channel=inc.channel_id or "")
    assert "No mitigations requested" in bot.last_reply()
    await mitigate(bot, inc, "cordon nodes=a100-4")
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    await bot.run("mitigations", user="UALICE", channel=inc.channel_id or "")
    assert "*M1* `cordon` `nodes=a100-4`" in bot.last_reply() and "done" in bot.last_reply()
    await bot.run("audit", user="UALICE", channel=inc.channel_id or "")
    audit = bot.last_reply()
    assert "M1 call `Node/a100-4` → done" in audit and "M1 approved" in audit and "M1 requested" in audit

    # Resolving with a cordon in force asks first; "Resolve anyway" resolves and says what is left.
    await bot.run("resolve all good", user="UALICE", channel=inc.channel_id or "")
    prompt = bot.slack.responses[-1]
    assert "still has mitigations in force" in str(prompt) and (await bot.fb.service.get(inc.id)).is_open
    anyway = next(e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"] if "anyway" in str(e))
    reply = await click(bot, inc, {"ts": "1.0", "blocks": prompt["blocks"]}, anyway["action_id"], "UALICE")
    assert "resolved; left in force: M1" in reply
    assert not (await bot.fb.service.get(inc.id)).is_open


async def test_mitigate_button_opens_a_modal_checked_before_the_ack(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    summary = bot.slack.channels[inc.channel_id or ""].messages[0]
    await click(bot, inc, summary, "fb_mitigate", "UALICE")
    (opened,) = bot.slack.calls_to("views.open")
    view = opened["view"]
    assert view["callback_id"] == "fb_mitigate" and view["private_metadata"] == inc.channel_id
    names = [o["value"] for o in view["blocks"][0]["element"]["options"]]
    assert {"cordon", "uncordon"} <= set(names)

    def submission(playbook: str, params: str) -> dict[str, object]:
        state = {
            "playbook": {"value": {"type": "static_select", "selected_option": {"value": playbook}}},
            "params": {"value": {"type": "plain_text_input", "value": params}},
        }
        return {"view": {**view, "id": f"V{playbook}{len(params)}", "state": {"values": state}}}

    status, body = await bot.interaction("view_submission", user="UALICE", **submission("cordon", "node=x"))
    assert status == 200 and "unknown parameter" in body and '"params"' in body
    status, body = await bot.interaction("view_submission", user="UALICE", **submission("cordon", "nodes=a100-5"))
    assert (status, body) == (200, "")
    await bot.settle()
    assert "schedulable yes → *no*" in text_of(plan_message(bot, inc, "M1"))


async def test_one_run_at_a_time_per_object(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-5")
    # Another run (another request, another replica) is changing a100-5 right now.
    held = await bot.fb.service.mitigation.mitigations.lock_targets(["prod/Node/a100-5"], "someone-else", 30)
    assert held is None
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    m1 = await bot.fb.service.mitigation.get(inc.id, 1)
    assert m1.state is MitigationState.FAILED and "Another run is changing prod/Node/a100-5" in (m1.reason or "")
    assert node_writes(kube) == [] and buttons(plan_message(bot, inc, "M1")) == {}
    await bot.fb.service.mitigation.mitigations.unlock_targets(["prod/Node/a100-5"], "someone-else")
    await mitigate(bot, inc, "cordon nodes=a100-5")
    await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UBOB")
    assert node_writes(kube) == ["a100-5"]
    assert await bot.fb.service.mitigation.mitigations.lock_targets(["prod/Node/a100-5"], "next", 30) is None


async def test_two_approvers_at_once_run_it_once(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-0")
    plan = plan_message(bot, inc, "M1")

    def clicked(user: str, n: int) -> dict[str, object]:
        action = {"type": "button", "action_id": APPROVE, "value": f"{inc.id}:1", "action_ts": f"{n}.7"}
        return {
            "channel": {"id": inc.channel_id},
            "message": {"ts": plan["ts"]},
            "trigger_id": f"trig-race-{n}",
            "response_url": bot.slack.response_url(f"race{n}"),
            "actions": [action],
        }

    statuses = await asyncio.gather(
        *(bot.interaction("block_actions", user=u, **clicked(u, n)) for n, u in enumerate(["UBOB", "UCAROL"]))
    )
    # Slack retries one delivery: the same trigger id is recorded once.
    retried = await bot.interaction("block_actions", user="UBOB", **clicked("UBOB", 0))
    assert [s for s, _ in [*statuses, retried]] == [200, 200, 200]
    await bot.settle()
    m1 = await bot.fb.service.mitigation.get(inc.id, 1)
    assert m1.state is MitigationState.DONE and len(m1.approvals) == 1
    assert node_writes(kube) == ["a100-0"]
    answers = sorted(r.get("text", "") for r in bot.slack.responses[-2:])
    assert any("Approved M1" in a for a in answers) and any("no longer act" in a for a in answers)
