"""Mitigation from Slack: request a playbook (command or modal), approve or reject its plan, undo its run, list
requests and the audit, and resolve with mitigations still in force or recovery not verified. Each is one
decorated function."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.errors import UsageError
from bot.core.service import IncidentService
from bot.models import Incident, MitigationState
from bot.models.evidence import Recovery
from bot.render.mitigations import (
    APPROVE_ACTION,
    MITIGATE_ACTION,
    REJECT_ACTION,
    RESOLVE_ANYWAY_ACTION,
    UNDO_ACTION,
    UNDO_BUTTONS,
    audit_text,
    mitigations_text,
    playbooks_reply_text,
    resolve_prompt,
)
from bot.render.replies import Reply, outcome_reply
from bot.render.views import MITIGATE_CALLBACK, mitigate_modal
from handlers.parsing import parse_page
from handlers.registry import CommandContext, HandlerTable, InteractionContext

handlers = HandlerTable()
AUDIT_PAGE = 40


def _key(value: str) -> tuple[int, int]:
    incident, _, number = value.partition(":")
    if not (incident.isdigit() and number.isdigit()):
        raise UsageError("That button carries no mitigation request; nothing was done.")
    return int(incident), int(number)


def _requested(m_ref: str, state: MitigationState, incident: Incident) -> Reply:
    if state is MitigationState.PENDING:
        return Reply(f"Plan {m_ref} posted in <#{incident.channel_id}> for approval.")
    if state is MitigationState.APPROVED:
        return Reply(f"{m_ref} needs no approval here; it runs now.")
    return Reply(f"{m_ref} can't run; its message in <#{incident.channel_id}> says why.")


@handlers.subcommand(
    "mitigate",
    usage="mitigate [<playbook> key=value ...]",
    summary="Plan a mitigation (cordon, drain, rollback, pause-sync, ...) for approval; alone: list playbooks.",
)
async def mitigate(ctx: CommandContext, rest: str) -> Reply:
    name, _, params = rest.strip().partition(" ")
    if not name:
        return Reply(playbooks_reply_text(ctx.service.mitigation.describe_playbooks(), ctx.config.command))
    m = await ctx.service.mitigation.request(ctx.target, name, params, ctx.user, ctx.op)
    return _requested(m.ref, m.state, ctx.target)


@handlers.subcommand("mitigations", usage="mitigations", summary="List this incident's mitigation requests.")
async def mitigations(ctx: CommandContext, _: str) -> Reply:
    found = await ctx.service.mitigation.of_incident(ctx.target.id)
    return Reply(mitigations_text(ctx.target, found))


@handlers.subcommand("audit", usage="audit [page]", summary="Every mitigation step and API call, newest first.")
async def audit(ctx: CommandContext, rest: str) -> Reply:
    page = parse_page(rest, ctx.config)
    entries = await ctx.service.mitigation.audit_log(ctx.target.id, limit=AUDIT_PAGE * page)
    shown = entries[AUDIT_PAGE * (page - 1) :]
    return Reply(audit_text(ctx.target, shown))


@handlers.action(APPROVE_ACTION)
async def approve(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    incident_id, number = _key(action["value"])
    m, counted = await ctx.service.mitigation.approve(incident_id, number, ctx.actor.id, ctx.op)
    if not counted:
        return Reply(f"Your approval of {m.ref} is counted already.")
    if m.state is MitigationState.APPROVED:
        return Reply(f"Approved {m.ref}: firebreak re-reads the cluster and runs it if nothing changed.")
    return Reply(f"Approval recorded: {len(m.approvals)} of {m.needed} for {m.ref}.")


@handlers.action(REJECT_ACTION)
async def reject(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    incident_id, number = _key(action["value"])
    m = await ctx.service.mitigation.reject(incident_id, number, ctx.actor.id, ctx.op)
    return Reply(f"Rejected {m.ref}; nothing was changed.")


@handlers.action(UNDO_ACTION, numbered=UNDO_BUTTONS)
async def undo(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    incident_id, number = _key(action["value"])
    m = await ctx.service.mitigation.request_undo(incident_id, number, ctx.actor.id, ctx.op)
    return _requested(m.ref, m.state, await ctx.service.get(incident_id))


@handlers.action(MITIGATE_ACTION)
async def open_mitigate(ctx: InteractionContext, action: dict[str, Any]) -> None:
    """The summary's Mitigate button: the modal lists the playbooks with their parameters."""
    incident = await ctx.service.get(int(action["value"]))
    if not incident.is_open:
        raise UsageError(f"{incident.ref} is resolved; reopen it before mitigating.")
    view = mitigate_modal(ctx.service.mitigation.describe_playbooks(), incident.channel_id or "", ctx.config.command)
    await ctx.client.views_open(trigger_id=action["trigger_id"], view=view)


@dataclass(frozen=True)
class MitigateForm:
    playbook: str
    params: str


def read_mitigate(view: dict[str, Any], service: IncidentService) -> tuple[MitigateForm, dict[str, str]]:
    """Checked before the ack: a wrong parameter shows under the field, with the playbook's usage."""
    values = view.get("state", {}).get("values", {})
    chosen = (values.get("playbook", {}).get("value", {}).get("selected_option") or {}).get("value", "")
    params = (values.get("params", {}).get("value", {}).get("value") or "").strip()
    if not chosen:
        return MitigateForm("", params), {"playbook": "Pick a playbook."}
    try:
        service.playbooks.parse(chosen, params)
    except UsageError as exc:
        return MitigateForm(chosen, params), {"params": str(exc)[:2000]}
    return MitigateForm(chosen, params), {}


@handlers.view(MITIGATE_CALLBACK, read=read_mitigate)
async def mitigate_submitted(ctx: InteractionContext, form: MitigateForm) -> Reply:
    incident = await ctx.service.find(None, ctx.channel_id)
    m = await ctx.service.mitigation.request(incident, form.playbook, form.params, ctx.actor.id, ctx.op)
    return _requested(m.ref, m.state, incident)


@handlers.action(RESOLVE_ANYWAY_ACTION)
async def resolve_anyway(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """Resolve after the prompt said what is still in force or not verified healthy. Recovery is checked again
    (it may have recovered since), so the timeline records what was actually overridden."""
    value = json.loads(action["value"])
    incident = await ctx.service.get(int(value["incident"]))
    recovery = await ctx.service.recovery.before_resolve(incident)
    summary = str(value.get("summary", ""))
    outcome = await ctx.service.resolve(incident, summary, ctx.actor, ctx.op, recovery=recovery, anyway=True)
    left = ", ".join(f"M{a.number}" for a in incident.active)
    done = f":white_check_mark: {incident.ref} resolved; left in force: {left or 'none'}"
    if recovery is not None:
        done += "; recovery verified." if recovery.recovered else f"; {len(recovery.unmet)} not verified healthy."
    return outcome_reply(outcome, done if recovery is not None else done + ".", "")


def resolve_first(incident: Incident, summary: str, recovery: Recovery | None = None) -> Reply | None:
    """The prompt to show instead of resolving while lasting mitigations are in force or recovery is not verified
    (None: resolve)."""
    unverified = recovery is not None and not recovery.recovered
    if not incident.active and not unverified:
        return None
    why = []
    if incident.active:
        why.append("still has mitigations in force")
    if unverified:
        why.append("has not verifiably recovered")
    return Reply(f"{incident.ref} {' and '.join(why)}.", resolve_prompt(incident, summary, recovery))
