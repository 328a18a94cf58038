"""Bad input: an ephemeral message that says how to do it right, and nothing changes."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness import Harness, sign


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate now", "I don't know `frobnicate`"),
        ("declare sev9 Outage", "'sev9' is not a severity"),
        ("declare sev2", "Missing the title"),
        ("list everything", "takes no arguments"),
    ],
)
async def test_usage_errors_answer_in_the_ack(bot: Harness, text: str, expected: str) -> None:
    ack = await bot.run(text)
    assert ack["response_type"] == "ephemeral"
    assert expected in ack["text"]
    assert bot.slack.calls_to("conversations.create") == []


async def test_incident_scoped_usage_errors(bot: Harness) -> None:
    await bot.run("declare sev2 Disk pressure")
    (inc,) = await bot.fb.service.list_open()
    channel = inc.channel_id
    assert channel
    cases = {
        "sev 7": "'7' is not a severity: use sev1 (worst) to sev4",
        "sev": "Give one severity",
        "role janitor <@UBOB>": "Unknown role 'janitor'",
        "role comms": "Name a role and one person",
        "ic @bob": "pick the person from Slack's @-autocomplete",
        "ic bob": "'bob' is not a user",
        "update": "Say what changed",
        "update resolved: all good": "To resolve, use",
        "update rolling back next 0": "`next` takes minutes from 1 to 1440",
        "note": "Missing the note text",
    }
    for text, expected in cases.items():
        ack = await bot.run(text, channel=channel)
        assert ack.get("response_type") == "ephemeral", text
        assert expected in ack["text"], (text, ack["text"])
        assert "Usage: `/incident" in ack["text"]
    incident = await bot.fb.service.get(inc.id)
    assert incident.version == inc.version, "nothing changed"


async def test_forged_and_stale_signatures_get_401(bot: Harness) -> None:
    body = "command=%2Fincident&text=list&user_id=UALICE&channel_id=C1&trigger_id=t1"
    forged = sign(body, secret="not-the-secret")
    status, _ = await bot.post_raw(body, forged, "application/x-www-form-urlencoded")
    assert status == 401
    stale = sign(body, timestamp=int(time.time()) - 600)
    status, _ = await bot.post_raw(body, stale, "application/x-www-form-urlencoded")
    assert status == 401
    status, _ = await bot.post_raw(body, {}, "application/x-www-form-urlencoded")
    assert status == 401
    assert bot.slack.responses == []


async def test_request_url_verification_echoes_the_challenge_only_when_signed(bot: Harness) -> None:
    """Slack checks the app's Request URL with a signed url_verification event before it sends anything else."""
    body = json.dumps(
        {
            "token": "deprecated",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    status, text = await bot.post_raw(body, sign(body), "application/json")
    assert status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in text
    status, text = await bot.post_raw(body, sign(body, secret="not-the-secret"), "application/json")
    assert status == 401
    assert "3eZbrw" not in text
