"""Buttons, custom practice config, and the edges of channel naming."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.root.settings import Settings
from tests.harness import Harness, running
from tests.slack_standin import SlackStandIn


def claim_ic_click(incident_id: int, channel: str, message_ts: str, n: int) -> dict[str, object]:
    """The block_actions fields of a click on the summary's "I'll be IC" button."""
    return {
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "message": {"ts": message_ts},
        "trigger_id": f"trig-button-{n}",
        "actions": [
            {
                "type": "button",
                "action_id": "fb_claim_ic",
                "block_id": "b1",
                "value": str(incident_id),
                "action_ts": f"{n}.0",
            }
        ],
    }


async def test_ill_be_ic_button_and_double_click(bot: Harness) -> None:
    await bot.run("declare sev2 Button press", user="UALICE")
    (inc,) = await bot.fb.service.list_open()
    assert inc.channel_id and inc.summary_ts
    summary = bot.slack.channels[inc.channel_id].messages[0]
    button, mitigate, evidence = summary["blocks"][-1]["elements"]
    assert button["action_id"] == "fb_claim_ic" and button["value"] == str(inc.id)
    assert mitigate["action_id"] == "fb_mitigate" and mitigate["value"] == str(inc.id)
    assert evidence["action_id"] == "fb_evidence" and evidence["value"] == str(inc.id)
    for n in (1, 2):  # a double click: two deliveries, two action_ts
        click = claim_ic_click(inc.id, inc.channel_id, inc.summary_ts, n)
        status, body = await bot.interaction(
            "block_actions", user="UBOB", response_url=bot.slack.response_url(f"button{n}"), **click
        )
        assert (status, body) == (200, "")
    await bot.settle()
    incident = await bot.fb.service.get(inc.id)
    assert incident.ic == "UBOB"
    handoffs = [e for e in await bot.fb.service.timeline(inc.id) if e.kind.value == "ic_handoff"]
    assert len(handoffs) == 1 and handoffs[0].actor.user_id == "UBOB"
    notices = [m for m in bot.slack.channels[inc.channel_id].messages if "handed off" in m.get("text", "")]
    assert len(notices) == 1, "one post for one change"
    assert sorted(bot.replies()[-2:]) == ["You're already IC of INC-1.", "You're now IC of INC-1."]


async def test_every_channel_name_taken(bot: Harness) -> None:
    base = f"inc-{datetime.now(UTC):%Y%m%d}-popular-name"
    bot.slack.add_channel(base)
    for n in range(2, 21):
        bot.slack.add_channel(f"{base}-{n}")
    await bot.run("declare sev3 Popular name")
    reply = bot.last_reply()
    assert f"Every channel name from #{base} to #{base}-20 is taken" in reply
    assert "INC-1 is recorded" in reply


async def test_custom_command_prefix_and_roles_from_yaml(
    settings: Settings, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firebreak.yaml"
    config.write_text(
        "command: /sev\nchannel_prefix: war\nroles: [liaison]\ndefault_severity: 2\n"
        "severities:\n  - {level: 1, description: down, update_every_minutes: 10}\n"
        "  - {level: 2, description: degraded, update_every_minutes: 20}\n"
    )
    async with running(settings.model_copy(update={"config_file": config}), slack) as h:
        await h.run("declare GPU quota exhausted", user="UALICE")
        (inc,) = await h.fb.service.list_open()
        assert inc.channel_name == f"war-{datetime.now(UTC):%Y%m%d}-gpu-quota-exhausted" and inc.severity == 2
        ack = await h.run("role liaison <@UBOB>", channel=inc.channel_id or "")
        assert ack == {}
        assert (await h.fb.service.get(inc.id)).roles["liaison"] == "UBOB"
        ack = await h.run("sev 3", channel=inc.channel_id or "")
        assert "use sev1 (worst) to sev2" in ack["text"] and "`/sev sev <1-2>`" in ack["text"]
