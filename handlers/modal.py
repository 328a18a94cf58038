"""The declare form, for `/incident declare` with no arguments."""

from __future__ import annotations

from typing import Any

from bot.config import IncidentConfig

DECLARE_CALLBACK = "fb_declare"


def declare_modal(config: IncidentConfig, channel_id: str) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": f"{s.label}: {s.description}"[:75]}, "value": str(s.level)}
        for s in config.severities
    ]
    default = next(o for o in options if o["value"] == str(config.default_severity))
    return {
        "type": "modal",
        "callback_id": DECLARE_CALLBACK,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": 150,
                    "placeholder": {"type": "plain_text", "text": "e.g. Checkout API 5xx above SLO"},
                },
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": default,
                },
            },
            {
                "type": "input",
                "block_id": "description",
                "optional": True,
                "label": {"type": "plain_text", "text": "What do you see?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 2900,
                },
            },
        ],
    }


def read_declare_submission(view: dict[str, Any]) -> tuple[str, int | None, str, dict[str, str]]:
    """(title, severity, description, errors by block id) from a view_submission."""
    values = view.get("state", {}).get("values", {})
    title = (values.get("title", {}).get("value", {}).get("value") or "").strip()
    selected = values.get("severity", {}).get("value", {}).get("selected_option") or {}
    description = values.get("description", {}).get("value", {}).get("value") or ""
    errors = {}
    if not title:
        errors["title"] = "Give the incident a short title people will recognise."
    severity = int(selected["value"]) if selected.get("value", "").isdigit() else None
    return title, severity, description, errors
