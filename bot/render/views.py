"""Modals: the declare form, for `/incident declare` with no arguments."""

from __future__ import annotations

from typing import Any

from bot.core.config import IncidentConfig
from bot.models import MAX_TEXT, MAX_TITLE

DECLARE_CALLBACK = "fb_declare"
OPTION_LIMIT = 75
DESCRIPTION_LIMIT = MAX_TEXT - 100


def declare_modal(config: IncidentConfig, channel_id: str) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": f"{s.label}: {s.description}"[:OPTION_LIMIT]}, "value": str(s.level)}
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
                    "max_length": MAX_TITLE,
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
                    "max_length": DESCRIPTION_LIMIT,
                },
            },
        ],
    }


MITIGATE_CALLBACK = "fb_mitigate"
PARAMS_LIMIT = 500


def mitigate_modal(
    playbooks: list[tuple[str, str, str]], channel_id: str, command: str, *, chosen: str | None = None, params: str = ""
) -> dict[str, Any]:
    """Pick a playbook and give its parameters; the plan is posted in the incident channel for approval. `chosen`
    and `params` fill the form in (a guide's playbook button), still to be checked and submitted."""
    options = [
        {
            "text": {"type": "plain_text", "text": name[:OPTION_LIMIT]},
            "description": {"type": "plain_text", "text": summary[:OPTION_LIMIT]},
            "value": name,
        }
        for name, summary, _ in playbooks[:100]
    ]
    usage = "\n".join(f"`{command} {u}`" for _, _, u in playbooks)
    picked = [o for o in options if o["value"] == chosen]
    return {
        "type": "modal",
        "callback_id": MITIGATE_CALLBACK,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Mitigate"},
        "submit": {"type": "plain_text", "text": "Plan it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "playbook",
                "label": {"type": "plain_text", "text": "Playbook"},
                "element": {"type": "static_select", "action_id": "value", "options": options}
                | ({"initial_option": picked[0]} if picked else {}),
            },
            {
                "type": "input",
                "block_id": "params",
                "optional": True,
                "label": {"type": "plain_text", "text": "Parameters (key=value ...)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": PARAMS_LIMIT,
                    "placeholder": {"type": "plain_text", "text": "e.g. pool=gpu-a100 cluster=prod-eu"},
                }
                | ({"initial_value": params[:PARAMS_LIMIT]} if params else {}),
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": ("Nothing runs yet: firebreak posts the plan for approval.\n" + usage)[:3000],
                    }
                ],
            },
        ],
    }


UPDATE_CALLBACK = "fb_update"
OPEN_STATUSES_SHOWN = ("investigating", "identified", "monitoring")


def update_modal(incident_id: int, channel_id: str, status: str, cadence_minutes: int) -> dict[str, Any]:
    """The reminder's "Post update": a status, what changed, and when the next update comes."""
    options = [{"text": {"type": "plain_text", "text": s}, "value": s} for s in OPEN_STATUSES_SHOWN]
    current = next((o for o in options if o["value"] == status), options[0])
    return {
        "type": "modal",
        "callback_id": UPDATE_CALLBACK,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": f"Update INC-{incident_id}"[:24]},
        "submit": {"type": "plain_text", "text": "Post update"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "status",
                "label": {"type": "plain_text", "text": "Status"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": current,
                },
            },
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "What changed (impact, what you tried, what's next)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": DESCRIPTION_LIMIT,
                },
            },
            {
                "type": "input",
                "block_id": "next",
                "optional": True,
                "label": {"type": "plain_text", "text": f"Next update in minutes (default {cadence_minutes})"},
                "element": {
                    "type": "number_input",
                    "action_id": "value",
                    "is_decimal_allowed": False,
                    "min_value": "1",
                    "max_value": "1440",
                },
            },
        ],
    }
