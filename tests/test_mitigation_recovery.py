"""The windows a crash or a Slack outage can open between a mitigation's decisions and what follows them: each
is closed by the resumed job, never left stuck, never doubled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core import approvals
from bot.core.errors import ChatError, FirebreakError
from bot.core.jobs import Op
from bot.models import MitigationState, Outcome, Result
from tests.harness import Harness
from tests.kube_standin import KubeRequest, KubeStandIn
from tests.mitigation_driver import buttons, click, declare, firebreak_with_cluster, mitigate, plan_message
from tests.slack_standin import SlackStandIn

APPROVE = "fb_mit_approve"


@pytest.fixture
async def bot(slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[Harness]:
    for n in range(6):
        kube.add_node(f"a100-{n}", pool="a100")
    kube.add_deployment("web", replicas=3)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as h:
        yield h


def real_writes(kube: KubeStandIn, resource: str = "nodes") -> list[str]:
    return [r.name for r in kube.calls("patch", resource) if r.query.get("dryRun") != "All"]


async def test_an_approval_recorded_before_a_crash_still_runs(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    svc = bot.fb.service.mitigation
    m = await svc.get(inc.id, 1)
    crashed = Op("job:slack-action:crashed-click")
    await svc.change(m, lambda r: approvals.approved(r, "UBOB", bot.clock()), crashed)  # then the process died
    await svc.approve(inc.id, 1, "UBOB", Op(crashed.key, recovering=True))
    await bot.settle()
    assert (await svc.get(inc.id, 1)).state is MitigationState.DONE and real_writes(kube) == ["a100-3"]


async def test_an_expiry_whose_edit_failed_removes_the_buttons_when_retried(bot: Harness) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    bot.clock.advance(minutes=16)
    bot.slack.fail("chat.update", "internal_error", status=500, times=3)
    with pytest.raises(ChatError):
        await bot.fb.service.mitigation.expire(inc.id, 1, Op("job:mitigation-expire:1:1:0"))
    assert (await bot.fb.service.mitigation.get(inc.id, 1)).state is MitigationState.EXPIRED
    bot.slack.failures.clear()
    await bot.fb.service.mitigation.expire(inc.id, 1, Op("job:mitigation-expire:1:1:0", recovering=True))
    assert buttons(plan_message(bot, inc, "M1")) == {}


async def test_a_run_recorded_done_before_a_crash_finishes_what_follows(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    svc = bot.fb.service.mitigation
    m = await svc.get(inc.id, 1)
    result = Result(target=m.plan.changes[0].target, outcome=Outcome.DONE)
    finished = {"state": MitigationState.DONE, "results": [result], "undo_params": {"nodes": "a100-3"}}
    await svc.change(m, lambda r: r.model_copy(update=finished), Op("job:mitigation-run:1:1:finish"))
    await svc.run(inc.id, 1, Op("job:mitigation-run:1:1", recovering=True))  # the crash came right after that
    incident = await bot.fb.service.get(inc.id)
    assert [a.number for a in incident.active] == [1], "listed as in force"
    kinds = [getattr(e.payload, "action", "") for e in await bot.fb.service.timeline(inc.id)]
    assert "done" in kinds


async def test_undoing_a_scale_leaves_nothing_in_force(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "scale deployment=web replicas=5")
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    assert [a.playbook for a in (await bot.fb.service.get(inc.id)).active] == ["scale"]
    await bot.fb.service.mitigation.request_undo(inc.id, 1, "UCAROL", Op.fresh())
    await bot.settle()
    await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UBOB")
    assert kube.get("deployments", "web", "default")["spec"]["replicas"] == 3
    assert (await bot.fb.service.get(inc.id)).active == ()


async def test_a_double_click_on_undo_asks_once(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    svc = bot.fb.service.mitigation
    outcomes = await asyncio.gather(
        svc.request_undo(inc.id, 1, "UCAROL", Op.fresh()),
        svc.request_undo(inc.id, 1, "UCAROL", Op.fresh()),
        return_exceptions=True,
    )
    made = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, FirebreakError)]
    assert len(made) == 1 and len(refused) == 1, outcomes
    assert [m.number for m in await svc.of_incident(inc.id)] == [1, 2]


async def test_an_undo_that_partly_failed_can_be_asked_for_again(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-2,a100-3")
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")

    def uncordon_a100_3(r: KubeRequest) -> bool:
        return r.name == "a100-3" and r.query.get("dryRun") != "All"

    kube.fail("patch", "nodes", 500, message="etcdserver: leader changed", when=uncordon_a100_3)
    svc = bot.fb.service.mitigation
    await svc.request_undo(inc.id, 1, "UCAROL", Op.fresh())
    await bot.settle()
    await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UBOB")
    m2 = await svc.get(inc.id, 2)
    assert [r.outcome for r in m2.results] == [Outcome.DONE, Outcome.FAILED]
    assert [a.number for a in (await bot.fb.service.get(inc.id)).active] == [1], "still in force"
    again = await svc.request_undo(inc.id, 1, "UCAROL", Op.fresh())
    await bot.settle()
    await click(bot, inc, plan_message(bot, inc, again.ref), APPROVE, "UBOB")
    assert not kube.get("nodes", "a100-3")["spec"].get("unschedulable")
    assert (await bot.fb.service.get(inc.id)).active == ()


async def test_an_undo_with_nothing_left_to_change_clears_what_is_in_force(bot: Harness, kube: KubeStandIn) -> None:
    inc = await declare(bot)
    await mitigate(bot, inc, "cordon nodes=a100-3")
    await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
    kube.change("nodes", "a100-3", "", lambda n: n["spec"].pop("unschedulable"))  # uncordoned by hand
    await bot.fb.service.mitigation.request_undo(inc.id, 1, "UCAROL", Op.fresh())
    await bot.settle()
    m2 = await bot.fb.service.mitigation.get(inc.id, 2)
    assert m2.state is MitigationState.REFUSED and "Nothing to change" in (m2.reason or "")
    assert (await bot.fb.service.get(inc.id)).active == ()
