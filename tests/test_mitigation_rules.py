"""Who may ask and who may approve (users and user groups, several approvals), impersonation, API refusals at
plan and run time, an unreachable cluster, and a drain through the bot with live progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import running
from bot.models import MitigationState
from tests.kube_standin import KubeRequest, KubeStandIn
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

APPROVE = "fb_mit_approve"

RULES = """
mitigation:
  approvals:
    cordon:
      requesters: [S0SRE]
      approvers: [S0ONCALL, UCAROL]
      approvals: 2
"""


def nodes(kube: KubeStandIn, count: int = 6) -> None:
    for n in range(count):
        kube.add_node(f"a100-{n}", pool="a100")


async def test_requesters_approvers_groups_and_two_approvals(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path
) -> None:
    nodes(kube)
    slack.add_group("S0SRE", {"UALICE", "UBOB"})
    slack.add_group("S0ONCALL", {"UDAVE"})
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path, RULES) as bot:
        inc = await declare(bot)
        assert "may request `cordon`" in await mitigate(bot, inc, "cordon nodes=a100-0", user="UERIN")
        assert await bot.fb.service.mitigation.of_incident(inc.id) == []
        await mitigate(bot, inc, "cordon nodes=a100-0", user="UALICE")
        plan = plan_message(bot, inc, "M1")
        assert "Needs 2 more approvals from <!subteam^S0ONCALL>, <@UCAROL>" in text_of(plan)
        assert "may approve `cordon`" in await click(bot, inc, plan, APPROVE, "UBOB")
        assert "1 of 2" in await click(bot, inc, plan, APPROVE, "UCAROL")
        assert "counted already" in await click(bot, inc, plan, APPROVE, "UCAROL")
        assert kube.get("nodes", "a100-0")["spec"].get("unschedulable") is None
        assert "Approved M1" in await click(bot, inc, plan, APPROVE, "UDAVE")  # through the on-call group
        m1 = await bot.fb.service.mitigation.get(inc.id, 1)
        assert m1.state is MitigationState.DONE and [a.user for a in m1.approvals] == ["UCAROL", "UDAVE"]
        assert kube.get("nodes", "a100-0")["spec"]["unschedulable"] is True
        # Other playbooks keep the default rule: anyone may ask, one other person approves.
        await mitigate(bot, inc, "uncordon nodes=a100-0", user="UERIN")
        assert "Needs 1 more approval from anyone in the channel except <@UERIN>" in text_of(
            plan_message(bot, inc, "M2")
        )


IMPERSONATE = """
mitigation:
  impersonate:
    UALICE: alice@example.com
    UBOB: bob@example.com
"""


async def test_writes_impersonate_the_requester(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path
) -> None:
    nodes(kube)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path, IMPERSONATE) as bot:
        inc = await declare(bot)
        assert "no Kubernetes user" in await mitigate(bot, inc, "cordon nodes=a100-0", user="UCAROL")
        # Bob may not patch nodes: the dry run, made as Bob, already says so, and nothing can be approved.
        kube.forbid("patch", "nodes", user="bob@example.com")
        await mitigate(bot, inc, "cordon nodes=a100-1", user="UBOB")
        refused = plan_message(bot, inc, "M1")
        assert 'User "bob@example.com" cannot patch resource "nodes"' in text_of(refused)
        assert buttons(refused) == {}
        await mitigate(bot, inc, "cordon nodes=a100-0", user="UALICE")
        await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UBOB")
        writes = [r for r in kube.calls("patch", "nodes") if r.query.get("dryRun") != "All"]
        assert [(r.name, r.impersonated) for r in writes] == [("a100-0", "alice@example.com")]
        dry = [r.impersonated for r in kube.calls("patch", "nodes") if r.query.get("dryRun") == "All"]
        assert dry == ["bob@example.com", "alice@example.com", "alice@example.com"]  # plan, then re-plan


async def test_api_refusals_at_plan_and_at_run_time(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path
) -> None:
    nodes(kube)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as bot:
        inc = await declare(bot)
        # The dry run is refused: the plan says so with the API's words, and offers nothing to approve.
        kube.fail("patch", "nodes", 500, message="etcdserver: request timed out")
        await mitigate(bot, inc, "cordon nodes=a100-0")
        refused = plan_message(bot, inc, "M1")
        assert "etcdserver: request timed out" in text_of(refused) and buttons(refused) == {}

        # The real write of one node is refused: that object fails, the others are done, Undo covers those.
        def real_write(r: KubeRequest) -> bool:
            return r.name == "a100-1" and r.query.get("dryRun") != "All"

        kube.fail("patch", "nodes", 409, message="Operation cannot be fulfilled on nodes", when=real_write)
        await mitigate(bot, inc, "cordon nodes=a100-0,a100-1")
        await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UBOB")
        m2 = await bot.fb.service.mitigation.get(inc.id, 2)
        assert [(r.target.name, r.outcome.value) for r in m2.results] == [("a100-0", "done"), ("a100-1", "failed")]
        assert "Operation cannot be fulfilled on nodes" in m2.results[1].message
        assert m2.undo_params == {"nodes": "a100-0", "cluster": "prod", "missing_ok": True}
        result = text_of(result_message(bot, inc, "M2"))
        assert "`Node/a100-1` failed: " in result and "Operation cannot be fulfilled on nodes" in result
        assert result.startswith(":large_orange_circle:") and "1 done, 1 failed" in result
        audit = await bot.fb.service.mitigation.audit_log(inc.id, limit=50)
        assert ("Node/a100-1", "failed") in [(e.target, e.outcome) for e in audit if e.action == "call"]


@pytest.mark.parametrize("cluster", ["staging", "down"])
async def test_cluster_unknown_or_unreachable_fails_the_request_with_the_reason(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path, cluster: str
) -> None:
    nodes(kube)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as bot:
        inc = await declare(bot)
        if cluster == "down":
            await kube.stop()
            reply = await mitigate(bot, inc, "cordon nodes=a100-0")
            assert "Couldn't plan `cordon` on cluster prod" in reply
        else:
            reply = await mitigate(bot, inc, "cordon nodes=a100-0 cluster=staging")
            assert "can't use context staging" in reply
        assert await bot.fb.service.mitigation.of_incident(inc.id) == []
        assert await bot.fb.service.mitigation.audit_log(inc.id, limit=10) == []


async def test_drain_through_the_bot_shows_progress_and_names_blocked_pods(
    slack: SlackStandIn,
    redis_url: str,
    kube: KubeStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(running, "PROGRESS_SECONDS", 0.0)
    nodes(kube, 4)
    kube.add_deployment("web", replicas=3, nodes=["a100-0", "a100-0", "a100-1"])
    config = "mitigation:\n  drain:\n    pdb_wait_seconds: 0.3\n    retry_seconds: 0.1\n"
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path, config) as bot:
        inc = await declare(bot)
        await mitigate(bot, inc, "drain nodes=a100-0")
        plan = plan_message(bot, inc, "M1")
        shown = text_of(plan)
        assert "`Node/a100-0`" in shown and shown.count("`Pod/default/web-") == 2
        await click(bot, inc, plan, APPROVE, "UBOB")
        m1 = await bot.fb.service.mitigation.get(inc.id, 1)
        assert m1.state is MitigationState.DONE and m1.count(m1.results[0].outcome) >= 1
        assert [r.outcome.value for r in m1.results] == ["done", "done", "done"]
        progress = [c for c in slack.calls_to("chat.update") if "Running:" in str(c.get("blocks"))]
        assert progress, "the plan message showed progress while it ran"
        assert m1.undo_params == {"nodes": "a100-0", "cluster": "prod", "missing_ok": True}


async def test_deploy_freeze_shows_in_topic_and_summary_until_undone(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path
) -> None:
    def team(obj: dict[str, object]) -> None:
        obj["metadata"].setdefault("labels", {}).update(team="payments")  # type: ignore[attr-defined]

    kube.add_application("payments-api")
    kube.add_kustomization("payments-infra")
    kube.add_application("search")  # another team's: left alone
    kube.change("applications", "payments-api", "argocd", team)
    kube.change("kustomizations", "payments-infra", "flux-system", team)
    async with firebreak_with_cluster(slack, redis_url, kube, tmp_path) as bot:
        inc = await declare(bot)
        await mitigate(bot, inc, "freeze selector=team=payments")
        await click(bot, inc, plan_message(bot, inc, "M1"), APPROVE, "UBOB")
        assert "automated" not in kube.get("applications", "payments-api", "argocd")["spec"]["syncPolicy"]
        assert kube.get("kustomizations", "payments-infra", "flux-system")["spec"]["suspend"] is True
        assert "automated" in kube.get("applications", "search", "argocd")["spec"]["syncPolicy"]
        channel = slack.channels[inc.channel_id or ""]
        assert ":octagonal_sign: DEPLOY FREEZE" in channel.topic
        assert "*M1* freeze" in text_of(channel.messages[0])

        await click(bot, inc, result_message(bot, inc, "M1"), "fb_mit_undo", "UBOB")
        assert "unfreeze" in text_of(plan_message(bot, inc, "M2"))
        await click(bot, inc, plan_message(bot, inc, "M2"), APPROVE, "UALICE")
        policy = kube.get("applications", "payments-api", "argocd")["spec"]["syncPolicy"]
        assert policy == {"automated": {"prune": True, "selfHeal": True}}, "restored exactly"
        assert not kube.get("kustomizations", "payments-infra", "flux-system")["spec"].get("suspend")
        assert "FREEZE" not in channel.topic and (await bot.fb.service.get(inc.id)).active == ()


def test_the_resolve_prompt_with_several_mitigations_in_force_is_a_message_slack_accepts() -> None:
    """One Undo button per mitigation in force, each with its own action_id (Slack refuses a block holding two
    buttons with one id), every one answered by the Undo handler."""
    from datetime import UTC, datetime

    from bot.models import ActiveMitigation, Incident
    from bot.render.blocks import numbered_ids
    from bot.render.mitigations import UNDO_ACTION, UNDO_BUTTONS, resolve_prompt
    from handlers.mitigate import handlers as mitigate_handlers
    from tests.slack_rules import check_blocks

    active = tuple(ActiveMitigation(number=n, playbook="cordon", label=f"cordon node-{n}") for n in range(1, 6))
    incident = Incident(
        id=3, title="GPU nodes flapping", severity=2, declared_at=datetime.now(UTC), declared_by="U1", active=active
    )
    blocks = resolve_prompt(incident, "fixed")
    check_blocks(blocks)
    row = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [e["text"]["text"] for e in row] == ["Undo M1", "Undo M2", "Undo M3", "Undo M4", "Resolve anyway"]
    registered = {a.action_id for a in mitigate_handlers.actions}
    assert {e["action_id"] for e in row[:4]} <= set(numbered_ids(UNDO_ACTION, UNDO_BUTTONS)) <= registered
