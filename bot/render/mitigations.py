"""Mitigation requests in Slack: the plan message (edited in place as it is decided and run), the result with
Undo, the lists, the audit, the modal and the resolve prompt (mitigations in force, recovery not verified)."""

from __future__ import annotations

import json
from typing import Any

from bot.models import AuditEntry, Change, Incident, Mitigation, MitigationState, Outcome, Result
from bot.models.evidence import Recovery
from bot.render.blocks import Block, actions, button, chunks, clip, context, fitting, numbered, section
from bot.render.evidence import recovery_lines, window_text
from bot.render.mrkdwn import slack_time

APPROVE_ACTION = "fb_mit_approve"
REJECT_ACTION = "fb_mit_reject"
UNDO_ACTION = "fb_mit_undo"
UNDO_BUTTONS = 4
"""The resolve prompt's Undo buttons, numbered (`fb_mit_undo_0` ... `_3`)."""


MITIGATE_ACTION = "fb_mitigate"
RESOLVE_ANYWAY_ACTION = "fb_resolve_anyway"
SHOWN = 25
"""Objects listed in one message; the rest are counted (the audit and `mitigations` have them all)."""

STATE_ICON = {
    MitigationState.PENDING: ":hourglass_flowing_sand:",
    MitigationState.REFUSED: ":no_entry:",
    MitigationState.APPROVED: ":white_check_mark:",
    MitigationState.RUNNING: ":gear:",
    MitigationState.DONE: ":large_green_circle:",
    MitigationState.REJECTED: ":x:",
    MitigationState.EXPIRED: ":clock3:",
    MitigationState.SUPERSEDED: ":arrows_counterclockwise:",
    MitigationState.INTERRUPTED: ":warning:",
    MitigationState.FAILED: ":red_circle:",
}
OUTCOME_ICON = {
    Outcome.DONE: ":white_check_mark:",
    Outcome.ALREADY: ":heavy_minus_sign:",
    Outcome.FAILED: ":x:",
    Outcome.UNKNOWN: ":grey_question:",
}


def who(ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)


def params_text(params: dict[str, Any]) -> str:
    """As someone would type them: lists comma-separated, nested values (a saved policy) as JSON."""

    def shown(v: Any) -> str:
        if isinstance(v, list | tuple):
            return ",".join(str(x) for x in v)
        return json.dumps(v, separators=(",", ":")) if isinstance(v, dict) else str(v)

    return " ".join(f"{k}={shown(v)}" for k, v in params.items()) or "(no parameters)"


def change_line(c: Change) -> str:
    keys = list(dict.fromkeys([*c.before, *c.after]))
    moved = [
        f"{k} {c.before.get(k, '(none)')} → *{c.after.get(k, '(none)')}*"
        for k in keys
        if c.before.get(k) != c.after.get(k)
    ]
    same = [f"{k} {c.before[k]}" for k in keys if k in c.before and c.before.get(k) == c.after.get(k)]
    same += [f"{k} {v}" for k, v in c.context.items()]
    line = f"• `{c.target}`: " + ("; ".join(moved) or "no change")
    if same:
        line += f" _({', '.join(same)})_"
    return clip(line + (" · _already so, skipped_" if c.noop else ""))


def result_line(r: Result) -> str:
    return clip(f"{OUTCOME_ICON[r.outcome]} `{r.target}` {r.outcome.value}" + (f": {r.message}" if r.message else ""))


def listed(lines: list[str], total: int, what: str) -> list[str]:
    shown = fitting(lines[:SHOWN], budget=6000)
    if total > len(shown):
        shown.append(f"_…and {total - len(shown)} more {what} (`/incident audit` lists every call)_")
    return shown


def tally(m: Mitigation) -> str:
    counts = [f"{m.count(o)} {o.value}" for o in Outcome if m.count(o)]
    return ", ".join(counts) or "nothing to do"


def state_line(m: Mitigation) -> str:
    s = m.state
    if s is MitigationState.PENDING:
        missing = max(0, m.needed - len(m.approvals))
        pool = who(m.approvers) if m.approvers else "anyone in the channel"
        if not m.self_approval:
            pool += f" except <@{m.requester}>"
        done = f" Approved so far by {who([a.user for a in m.approvals])}." if m.approvals else ""
        return (
            f"Needs {missing} more approval{'s' if missing != 1 else ''} from {pool}.{done} "
            f"Expires {slack_time(m.expires_at)}."
        )
    if s is MitigationState.APPROVED:
        return f"Approved by {who([a.user for a in m.approvals]) or 'configuration'}; re-reading the cluster first."
    if s is MitigationState.RUNNING:
        return f"Running: {len(m.results)} of {len(m.plan.changes)} finished ({tally(m)})."
    if s is MitigationState.DONE:
        return f"Done: {tally(m)}."
    if s is MitigationState.REJECTED:
        return f"Rejected by <@{m.decided_by}>. Nothing was changed."
    if s is MitigationState.EXPIRED:
        return f"Expired {slack_time(m.expires_at)} without approval. Nothing was changed; request it again to re-plan."
    if s is MitigationState.SUPERSEDED:
        return f"{m.reason or 'Replaced.'} Nothing was changed by this one."
    return m.reason or s.value


def mitigation_post(incident: Incident, m: Mitigation) -> tuple[str, list[Block]]:
    plan = m.plan
    undo = f" · undoes M{m.undo_of}" if m.undo_of else ""
    head = f"{icon(m)} *{incident.ref} {m.ref}* · `{m.playbook}` on *{plan.cluster}* · asked by <@{m.requester}>{undo}"
    blocks: list[Block] = [section(head), context(f"`{params_text(m.params)}` · {m.state.value}")]
    lines = listed([change_line(c) for c in plan.changes], len(plan.changes), "objects")
    blocks.append(section("*Plan*\n" + ("\n".join(lines) or "_nothing to change_")))
    notes = [f":information_source: {n}" for n in plan.notes]
    notes += [f":no_entry: {r}" for r in plan.refused]
    notes += [f":no_entry: API server dry run refused {d}" for d in plan.dry_run]
    if notes:
        blocks.append(section("\n".join(fitting(notes, budget=2800))))
    if plan.writes and not plan.dry_run and not plan.refused:
        blocks.append(context(f":test_tube: The API server accepted a dry run of all {len(plan.writes)} write(s)."))
    blocks.append(section(state_line(m)))
    if m.state.live:
        blocks.append(
            actions(
                {**button(APPROVE_ACTION, "Approve", m.key), "style": "primary"},
                {**button(REJECT_ACTION, "Reject", m.key), "style": "danger"},
            )
        )
    text = f"{incident.ref} {m.ref} {m.playbook} on {plan.cluster}: {m.state.value}"
    return text, blocks


def icon(m: Mitigation) -> str:
    """A run that finished with failures is not green."""
    if m.state is MitigationState.DONE and (m.count(Outcome.FAILED) or m.count(Outcome.UNKNOWN)):
        return ":large_orange_circle:"
    return STATE_ICON[m.state]


def result_post(incident: Incident, m: Mitigation) -> tuple[str, list[Block]]:
    head = f"{icon(m)} *{incident.ref} {m.ref}* `{m.playbook}` on *{m.plan.cluster}*: {tally(m)}"
    blocks: list[Block] = [section(head)]
    lines = listed([result_line(r) for r in m.results], len(m.results), "objects")
    if lines:
        blocks.append(section("\n".join(lines)))
    if m.reason:
        blocks.append(section(f":warning: {m.reason}"))
    if m.undo_params and m.undone_by is None:
        blocks.append(actions(button(UNDO_ACTION, "Undo", m.key)))
        blocks.append(context(f"Undo runs `{params_text(m.undo_params)}` and needs the same approval."))
    return f"{incident.ref} {m.ref} {m.playbook}: {tally(m)}", blocks


def playbooks_reply_text(playbooks: list[tuple[str, str, str]], command: str) -> str:
    lines = [f"• `{name}`: {summary}\n   `{command} {usage}`" for name, summary, usage in playbooks]
    return "*Playbooks* (each runs after approval, with a plan first):\n" + "\n".join(lines)


def mitigations_text(incident: Incident, ms: list[Mitigation]) -> str:
    if not ms:
        return f"No mitigations requested in {incident.ref} yet. `/incident mitigate` lists the playbooks."
    lines = [
        f"{STATE_ICON[m.state]} *{m.ref}* `{m.playbook}` `{params_text(m.params)}` on {m.plan.cluster} · "
        f"{m.state.value} · asked by <@{m.requester}> {slack_time(m.created_at)}"
        + (f" · {tally(m)}" if m.results else "")
        for m in ms
    ]
    return f"*Mitigations in {incident.ref}*\n" + "\n".join(fitting(lines[::-1], budget=8000))


def audit_text(incident: Incident, entries: list[AuditEntry]) -> str:
    if not entries:
        return f"The audit of {incident.ref} is empty: no mitigation was requested."
    lines = []
    for e in entries:
        actor = f"<@{e.actor}>" if e.actor != "firebreak" else "firebreak"
        target = f" `{e.target}`" if e.target else ""
        outcome = f" → {e.outcome}" if e.outcome else ""
        detail = f": {e.detail}" if e.detail else ""
        lines.append(clip(f"{slack_time(e.at)} M{e.number} {e.action}{target}{outcome} by {actor}{detail}", 400))
    return f"*Audit of {incident.ref}*, newest first\n" + "\n".join(fitting(lines, budget=8000))


def resolve_prompt(incident: Incident, summary: str, recovery: Recovery | None = None) -> list[Block]:
    """Resolving while a cordon or a freeze is still in force, or before recovery is verified: say what, then
    undo it first (or wait and verify), or resolve anyway."""
    blocks: list[Block] = []
    if incident.active:
        lines = [f"• *M{a.number}* {a.label}" for a in incident.active]
        blocks.append(
            section(
                f":warning: {incident.ref} still has mitigations in force:\n"
                + "\n".join(lines)
                + "\nUndo them first (each undo needs approval), or resolve anyway and leave them."
            )
        )
    if recovery is not None and not recovery.recovered:
        head = (
            f":warning: {incident.ref} has not verifiably recovered: these were not healthy for the last "
            f"{window_text(recovery)} (SLO signals first, then layers):"
        )
        blocks += chunks(head, recovery_lines(recovery))
        blocks.append(context("Wait and run `verify` again, or resolve anyway: the override goes in the timeline."))
    undo = [
        button(numbered(UNDO_ACTION, i), f"Undo M{a.number}", f"{incident.id}:{a.number}")
        for i, a in enumerate(incident.active[:UNDO_BUTTONS])
    ]
    anyway = button(
        RESOLVE_ANYWAY_ACTION, "Resolve anyway", json.dumps({"incident": incident.id, "summary": summary[:1500]})
    )
    blocks.append(actions(*undo, anyway))
    return blocks
