"""Modal submissions: the form is read before the ack (errors show in the form), the work runs after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.service import IncidentService
from bot.render.replies import Reply, declared_reply
from bot.render.views import DECLARE_CALLBACK
from handlers.registry import HandlerTable, InteractionContext

handlers = HandlerTable()


@dataclass(frozen=True)
class DeclareForm:
    title: str
    severity: int | None
    description: str


def read_declare(view: dict[str, Any], service: IncidentService) -> tuple[DeclareForm, dict[str, str]]:
    """The form's values, and errors by block id."""
    values = view.get("state", {}).get("values", {})
    title = (values.get("title", {}).get("value", {}).get("value") or "").strip()
    selected = values.get("severity", {}).get("value", {}).get("selected_option") or {}
    description = values.get("description", {}).get("value", {}).get("value") or ""
    errors = {}
    if not title:
        errors["title"] = "Give the incident a short title people will recognise."
    severity = int(selected["value"]) if selected.get("value", "").isdigit() else None
    return DeclareForm(title, severity, description), errors


@handlers.view(DECLARE_CALLBACK, read=read_declare)
async def declare_submitted(ctx: InteractionContext, form: DeclareForm) -> Reply:
    outcome = await ctx.service.declare(
        title=form.title, severity=form.severity, description=form.description, actor=ctx.actor, op=ctx.op
    )
    return declared_reply(outcome, ctx.config, from_form=True)
