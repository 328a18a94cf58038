"""Slack failing: rate limits are waited out, errors reach the user as something they can act on."""

from __future__ import annotations

import time

import pytest

from tests.harness import Harness


async def test_rate_limited_call_waits_for_retry_after_then_succeeds(bot: Harness) -> None:
    bot.slack.fail("conversations.create", "ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    await bot.run("declare sev2 Ratelimit storm")
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert len(bot.slack.calls_to("conversations.create")) == 2
    (incident,) = await bot.fb.service.list_open()
    assert incident.channel_id and incident.announce_ts


async def test_invalid_auth_tells_the_user_and_a_repeat_finishes_the_job(bot: Harness) -> None:
    bot.slack.fail("conversations.create", "invalid_auth")
    ack = await bot.run("declare sev1 Payments down")
    assert "Declaring SEV1" in ack["text"]
    reply = bot.last_reply()
    assert "Slack rejected firebreak's token (invalid_auth)" in reply and "SLACK_BOT_TOKEN" in reply
    (incident,) = await bot.fb.service.list_open()
    assert incident.channel_id is None, "recorded, not yet provisioned"
    await bot.run("declare sev1 Payments down")  # the admin fixed the token; the user repeats
    (incident,) = await bot.fb.service.list_open()
    assert incident.id == 1 and incident.channel_id is not None and incident.announce_ts is not None
    assert len(await bot.fb.service.list_open()) == 1


async def test_announce_channel_without_bot_is_a_warning_not_a_failure(bot: Harness) -> None:
    private = bot.slack.add_channel("sre-private", bot_member=False)
    private.is_private = True
    bot.fb.service.declaring.announce_channel = private.id
    await bot.run("declare sev2 Image pulls failing")
    (incident,) = await bot.fb.service.list_open()
    assert incident.channel_id and incident.announce_ts is None
    reply = bot.last_reply()
    assert "Declared *INC-1*" in reply
    assert "Couldn't announce" in reply and "`/invite @firebreak`" in reply
    assert "warning" in [e.kind.value for e in await bot.fb.service.timeline(incident.id)]


async def test_channel_not_found_for_announcement(bot: Harness) -> None:
    bot.fb.service.declaring.announce_channel = "CDOESNOTEXIST"
    await bot.run("declare sev3 Flaky canary")
    assert "Slack can't find <#CDOESNOTEXIST>" in bot.last_reply()


async def test_not_in_channel_for_topic_is_reported(bot: Harness) -> None:
    await bot.run("declare sev3 Cert expiry")
    (incident,) = await bot.fb.service.list_open()
    assert incident.channel_id
    bot.slack.channels[incident.channel_id].members.discard("UFIREBREAK")  # someone kicked the bot
    await bot.run("sev 2", channel=incident.channel_id)
    reply = bot.last_reply()
    assert "SEV2" in reply and "Couldn't update the channel topic" in reply and "isn't a member" in reply
    assert (await bot.fb.service.get(incident.id)).severity == 2, "the change itself stands"


async def test_unexpected_failure_after_ack_is_reported_not_swallowed(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("redis went away mid-command")

    await bot.run("declare sev3 Something")
    monkeypatch.setattr(bot.fb.service, "list_open", boom)
    await bot.run("list")
    assert "internal error while running `list`" in bot.last_reply()
    _, metrics = await bot.get("/metrics")
    assert 'firebreak_commands_total{outcome="failed",subcommand="list"} 1.0' in metrics


async def test_slack_failing_for_a_while_delays_a_declare_and_never_drops_it(bot: Harness) -> None:
    """503s from Slack are "not now", not "no": the job runs again with backoff, the user hears that firebreak
    keeps trying, and the declare is finished once, when Slack answers."""
    bot.slack.fail("chat.postMessage", "service_unavailable", times=3)
    await bot.run("declare sev1 Slack is having a bad day")
    (incident,) = await bot.fb.service.list_open()
    assert incident.summary_ts and incident.announce_ts, "finished after Slack recovered"
    replies = bot.replies()
    assert any("Slack keeps failing (" in r and "no need to repeat it" in r for r in replies)
    assert sum("Declared *INC-1*" in r for r in replies) == 1
    channel = bot.slack.channels[incident.channel_id or ""]
    assert len([m for m in channel.messages if m["ts"] == incident.summary_ts]) == 1
    assert len(bot.slack.by_name("incidents").messages) == 1, "one announcement"
    assert "warning" not in [e.kind.value for e in await bot.fb.service.timeline(incident.id)]


async def test_a_transient_failure_of_a_soft_step_is_retried_not_swallowed(bot: Harness) -> None:
    bot.slack.fail("conversations.setTopic", "internal_error")
    await bot.run("declare sev2 Topic blip")
    (incident,) = await bot.fb.service.list_open()
    assert bot.slack.channels[incident.channel_id or ""].topic.startswith("SEV2 | investigating")
    assert "Couldn't" not in bot.last_reply()
    bot.slack.fail("chat.postMessage", "internal_error")  # the update's channel post
    await bot.run("update identified: bad rollout", channel=incident.channel_id or "")
    posted = [m["text"] for m in bot.slack.channels[incident.channel_id or ""].messages]
    assert posted.count("INC-1 update: bad rollout") == 1
    thread = [m for m in bot.slack.by_name("incidents").messages if m.get("thread_ts") == incident.announce_ts]
    assert [m["text"] for m in thread] == ["INC-1 update: bad rollout"]
