"""The job queue's edges: unreadable jobs and jobs that keep killing their worker are set aside, requests for
handlers that no longer exist are answered, and the worker stays quiet while Redis is away."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.core.jobs import Job
from handlers.runner import SLACK_JOB
from handlers.slack import INTERNAL_BEFORE_ACK, STORE_DOWN
from tests.harness import Harness, eventually


async def test_an_unreadable_job_is_set_aside_not_retried_forever(bot: Harness) -> None:
    redis = bot.fb.redis
    await redis.hset(
        "fb:job:broken", mapping={"doc": '{"id": "broken"}', "attempts": 0, "owner": "", "state": "queued"}
    )
    await redis.zadd("fb:jobs:due", {"broken": datetime.now(UTC).timestamp()})
    bot.fb.worker.wake()
    await eventually(lambda: redis.sismember("fb:jobs:dead", "broken"), within=5, what="never set aside")
    assert await redis.zcard("fb:jobs:due") == 0
    await bot.run("declare sev3 Still working")  # the worker carries on
    assert len(await bot.fb.service.list_open()) == 1


async def test_a_job_whose_workers_keep_dying_is_set_aside(bot: Harness) -> None:
    """Simulated: a job found 'running' with its lease run out, over and over, is the one killing workers."""
    redis = bot.fb.redis
    job = Job(id="killer", kind=SLACK_JOB, payload={"type": "event"}, created_at=datetime.now(UTC))
    await redis.hset(
        "fb:job:killer", mapping={"doc": job.model_dump_json(), "attempts": 6, "owner": "dead", "state": "running"}
    )
    await redis.hset("fb:job:killer", "crashes", 5)
    await redis.zadd("fb:jobs:due", {"killer": datetime.now(UTC).timestamp() - 1})
    bot.fb.worker.wake()
    await eventually(lambda: redis.sismember("fb:jobs:dead", "killer"), within=5, what="never set aside")
    assert await redis.hget("fb:job:killer", "state") == "dead"


async def test_a_recorded_command_this_version_no_longer_has_is_answered(bot: Harness) -> None:
    payload = {
        "type": "command",
        "name": "frobnicate",
        "rest": "",
        "user": "UALICE",
        "channel": "CGENERAL",
        "response_url": bot.slack.response_url("gone"),
        "incident_id": None,
    }
    job = Job(id="slack-command:old", kind=SLACK_JOB, payload=payload, created_at=datetime.now(UTC))
    await bot.fb.queue.enqueue(job, job.created_at)
    bot.fb.worker.wake()
    await bot.settle()
    assert "`frobnicate` is not a subcommand any more" in bot.last_reply()


async def test_a_declare_with_the_store_frozen_is_told_nothing_was_done(bot: Harness) -> None:
    """No lookup comes before a declare's record: the store is asked first, so a store that doesn't answer
    means, for certain, that nothing was done (not "can't tell")."""

    async def frozen() -> None:
        raise TimeoutError("frozen")

    bot.fb.ack_queue.ping = frozen  # type: ignore[method-assign]
    ack = await bot.run("declare sev1 During a freeze")
    assert ack["text"] == STORE_DOWN
    assert await bot.fb.service.list_open() == []


async def test_a_bug_before_the_ack_is_not_blamed_on_the_database(bot: Harness) -> None:
    async def broken(*_: object) -> None:
        raise KeyError("surprise")

    bot.fb.ack_queue.enqueue = broken  # type: ignore[method-assign, assignment]
    ack = await bot.run("declare sev1 Something")
    assert ack["text"] == INTERNAL_BEFORE_ACK


@pytest.mark.parametrize("body", [{"type": "view_submission"}, {"type": "block_actions", "actions": []}])
async def test_signed_interactions_missing_their_parts_get_400(bot: Harness, body: dict[str, object]) -> None:
    status, _ = await bot.interactive(body)
    assert 400 <= status < 500, "the sender's error, never a 500"


async def test_the_same_title_from_the_form_and_the_command_is_one_incident(bot: Harness) -> None:
    await bot.run("declare sev2 R&amp;D cluster &lt;down&gt;", user="UALICE")  # as Slack sends what was typed
    view = {
        "id": "VRD",
        "type": "modal",
        "callback_id": "fb_declare",
        "private_metadata": "CGENERAL",
        "state": {"values": {"title": {"value": {"value": "R&D cluster <down>"}}}},
    }
    await bot.interaction("view_submission", user="UALICE", view=view)
    await bot.settle()
    (incident,) = await bot.fb.service.list_open()
    assert incident.title == "R&D cluster <down>"
    assert "Nothing new was created" in json.dumps(bot.slack.calls_to("chat.postEphemeral"))
