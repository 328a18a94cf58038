"""Answering a reminder from its buttons: post the update through a form, or snooze it. One function each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.errors import UsageError
from bot.core.service import IncidentService
from bot.models import Status
from bot.render.mrkdwn import slack_time
from bot.render.posts import POST_UPDATE_ACTION, SNOOZE_ACTION, SNOOZE_BUTTONS
from bot.render.replies import Reply, outcome_reply
from bot.render.views import UPDATE_CALLBACK, update_modal
from handlers.parsing import MAX_NEXT_MINUTES
from handlers.registry import HandlerTable, InteractionContext

handlers = HandlerTable()


@handlers.action(SNOOZE_ACTION, numbered=SNOOZE_BUTTONS)
async def snooze(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    incident_id, _, minutes = str(action["value"]).partition(":")
    if not (incident_id.isdigit() and minutes.isdigit()):
        raise UsageError("That button carries no snooze; nothing was done.")
    incident = await ctx.service.get(int(incident_id))
    clicked = action.get("message_ts")
    if clicked and incident.reminder.message_ts != clicked:
        raise UsageError(
            f"That reminder was answered already; {incident.ref}'s next update is due by "
            f"{slack_time(incident.next_update_due) if incident.next_update_due else 'nothing (resolved)'}."
        )
    outcome = await ctx.service.snooze(incident, int(minutes), ctx.actor, ctx.op)
    due = outcome.incident.next_update_due
    when = slack_time(due) if due else "later"
    return outcome_reply(
        outcome, f":zzz: Snoozed {minutes} min: the next update for {incident.ref} is due by {when}.", ""
    )


@handlers.action(POST_UPDATE_ACTION)
async def open_update(ctx: InteractionContext, action: dict[str, Any]) -> None:
    incident = await ctx.service.get(int(action["value"]))
    if not incident.is_open:
        raise UsageError(f"{incident.ref} is resolved; nothing to update.")
    cadence = ctx.config.severity(incident.severity).update_every_minutes
    view = update_modal(incident.id, incident.channel_id or "", incident.status.value, cadence)
    await ctx.client.views_open(trigger_id=action["trigger_id"], view=view)


@dataclass(frozen=True)
class UpdateForm:
    status: Status
    text: str
    next_minutes: int | None


def read_update(view: dict[str, Any], service: IncidentService) -> tuple[UpdateForm, dict[str, str]]:
    values = view.get("state", {}).get("values", {})
    chosen = (values.get("status", {}).get("value", {}).get("selected_option") or {}).get("value", "")
    text = (values.get("text", {}).get("value", {}).get("value") or "").strip()
    raw_next = str(values.get("next", {}).get("value", {}).get("value") or "").strip()
    errors = {}
    status = (
        Status(chosen) if chosen in {s.value for s in Status} and chosen != Status.RESOLVED else Status.INVESTIGATING
    )
    if not text:
        errors["text"] = "Say what changed: impact, what was tried, what's next."
    next_minutes = None
    if raw_next:
        if not raw_next.isdigit() or not 1 <= int(raw_next) <= MAX_NEXT_MINUTES:
            errors["next"] = f"Minutes from 1 to {MAX_NEXT_MINUTES}, or leave it empty for the severity's cadence."
        else:
            next_minutes = int(raw_next)
    return UpdateForm(status, text, next_minutes), errors


@handlers.view(UPDATE_CALLBACK, read=read_update)
async def update_submitted(ctx: InteractionContext, form: UpdateForm) -> Reply:
    incident = await ctx.service.find(None, ctx.channel_id)
    outcome = await ctx.service.post_update(
        incident, form.text, ctx.actor, status=form.status, next_minutes=form.next_minutes, op=ctx.op
    )
    due = outcome.incident.next_update_due
    return outcome_reply(outcome, f"Update posted. Next one due by {slack_time(due) if due else 'the cadence'}.", "")
