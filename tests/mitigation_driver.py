"""Driving mitigation requests as people do: a slash command in the incident channel, clicks on the buttons of
firebreak's messages (signed block_actions through the real endpoint), and reading what the channel shows."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.models import Incident
from tests.conftest import make_settings
from tests.harness import Harness, running
from tests.kube_standin import KubeStandIn
from tests.slack_standin import SlackStandIn

_clicks = itertools.count(1)


@asynccontextmanager
async def firebreak_with_cluster(
    slack: SlackStandIn, redis_url: str, kube: KubeStandIn, tmp_path: Path, config: str = ""
) -> AsyncIterator[Harness]:
    """The bot with the stand-in cluster as context `prod` and `config` as FIREBREAK_CONFIG."""
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    extra: dict[str, object] = {"kubeconfig": kubeconfig, "kube_context": "prod"}
    if config:
        path = tmp_path / "firebreak.yaml"
        path.write_text(config)
        extra["config_file"] = path
    async with running(make_settings(slack, redis_url, **extra), slack) as h:
        yield h


async def declare(bot: Harness, title: str = "GPU nodes flapping") -> Incident:
    await bot.run(f"declare sev2 {title}", user="UALICE")
    (incident,) = await bot.fb.service.list_open()
    return incident


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The live buttons of a message, by action id."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block["elements"]:
                found.setdefault(element["action_id"], element)
    return found


def text_of(message: dict[str, Any]) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


def message(bot: Harness, incident: Incident, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    assert incident.channel_id
    found = [m for m in bot.slack.channels[incident.channel_id].messages if match(m)]
    assert len(found) == 1, f"expected one such message, found {len(found)}"
    return found[0]


def plan_message(bot: Harness, incident: Incident, ref: str) -> dict[str, Any]:
    """The request's message (the plan, its state and its buttons), by the key firebreak posted it with."""
    key = f":mitigation{ref.removeprefix('M')}"
    return message(bot, incident, lambda m: _key(m).endswith(key))


def result_message(bot: Harness, incident: Incident, ref: str) -> dict[str, Any]:
    key = f":result{ref.removeprefix('M')}"
    return message(bot, incident, lambda m: str(_key(m)).endswith(key))


def _key(m: dict[str, Any]) -> str:
    return str((m.get("metadata") or {}).get("event_payload", {}).get("key", ""))


async def click(
    bot: Harness,
    incident: Incident,
    msg: dict[str, Any],
    action_id: str,
    user: str,
    *,
    value: str | None = None,
) -> str:
    """Click a button of `msg` as `user` (the button must be on it, unless `value` forces a stale click) and
    return the ephemeral reply firebreak sent back."""
    n = next(_clicks)
    live = buttons(msg).get(action_id)
    assert live is not None or value is not None, f"no {action_id} button on the message"
    action = {
        "type": "button",
        "action_id": action_id,
        "block_id": "b",
        "value": value if value is not None else live["value"],  # type: ignore[index]
        "action_ts": f"{n}.5",
    }
    before = len(bot.slack.responses)
    status, _ = await bot.interaction(
        "block_actions",
        user=user,
        response_url=bot.slack.response_url(f"click{n}"),
        channel={"id": incident.channel_id},
        container={"type": "message", "message_ts": msg["ts"], "channel_id": incident.channel_id},
        message={"ts": msg["ts"]},
        trigger_id=f"trig-click-{n}",
        actions=[action],
    )
    assert status == 200
    await bot.settle()
    answers = bot.slack.responses[before:]
    return str(answers[-1].get("text", "")) if answers else ""


async def mitigate(bot: Harness, incident: Incident, text: str, user: str = "UALICE") -> str:
    assert incident.channel_id
    before = len(bot.slack.responses)
    await bot.run(f"mitigate {text}", user=user, channel=incident.channel_id)
    answers = bot.slack.responses[before:]
    return str(answers[-1].get("text", "")) if answers else ""
