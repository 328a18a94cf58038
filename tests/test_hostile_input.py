"""Hostile and malformed input: no broadcast or disguised link is reposted, nothing unsigned is parsed, nothing
malformed gets a 500, typos never create incidents, and replies stay inside Slack's limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from bot.models import NoteAdded
from tests.harness import SIGNING_SECRET, Harness, sign

LIST = urlencode({"command": "/incident", "text": "list", "user_id": "U1", "channel_id": "C1", "trigger_id": "t1"})
LIST_BYTES = LIST.encode()
BROADCASTS = ("<!here>", "<!channel>", "<!everyone>", "<!subteam^S0ONCALL|@oncall>")


def everything_posted(bot: Harness) -> str:
    """Every text and block firebreak sent to Slack: channel posts, edits, topics, ephemeral replies."""
    sent = [
        c.args for c in bot.slack.calls if c.method in ("chat.postMessage", "chat.update", "conversations.setTopic")
    ]
    return json.dumps(sent) + json.dumps(bot.slack.responses)


async def test_broadcasts_and_disguised_links_are_never_reposted(bot: Harness) -> None:
    await bot.run("declare sev2 <!channel> payments down <http://evil.example/phish|status page>", user="UALICE")
    (inc,) = await bot.fb.service.list_open()
    assert inc.channel_id
    for mention in BROADCASTS:
        await bot.run(f"update {mention} please look <http://evil.example/x|the runbook>", channel=inc.channel_id)
    await bot.run("note <!everyone> see <https://grafana.example/d/1>", channel=inc.channel_id)
    await bot.run("resolve <!here> fixed", channel=inc.channel_id)
    await bot.run("timeline", channel=inc.channel_id)
    posted = everything_posted(bot)
    for token in ("<!here", "<!channel", "<!everyone", "<!subteam", "|status page>", "|the runbook>"):
        assert token not in posted, f"{token} reached Slack"
    # The words stay, the address of a link is shown, and plain links keep working.
    assert "@here please look" in posted and "@oncall please look" in posted
    assert "the runbook (<http://evil.example/x>)" in posted
    assert "<https://grafana.example/d/1>" in posted


async def test_user_mentions_still_work_where_they_are_the_point(bot: Harness) -> None:
    await bot.run("declare sev3 Mentions", user="UALICE")
    (inc,) = await bot.fb.service.list_open()
    assert inc.channel_id
    await bot.run("role comms <@UBOB|bob>", channel=inc.channel_id)
    await bot.run("update handing comms to <@UBOB|bob> &amp; ops &lt;soon&gt;", channel=inc.channel_id)
    update = bot.slack.channels[inc.channel_id].messages[-1]
    assert update["text"] == "INC-1 update: handing comms to <@UBOB> &amp; ops &lt;soon&gt;"
    assert (await bot.fb.service.get(inc.id)).roles["comms"] == "UBOB"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{oops", "application/json"),
        (b"[1,2]", "application/json"),
        (b"payload=notjson", "application/x-www-form-urlencoded"),
        (b"text=\xff\xfe\xfd", "application/x-www-form-urlencoded"),
        (b"text=hello", "application/x-www-form-urlencoded; charset=klingon"),
    ],
)
async def test_unsigned_garbage_is_refused_before_it_is_parsed(bot: Harness, body: bytes, content_type: str) -> None:
    assert bot.session is not None
    headers = {"Content-Type": content_type}
    async with bot.session.post(f"{bot.url}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{oops", "application/json", 400),
        (b"[1,2]", "application/json", 400),
        (b"payload=notjson", "application/x-www-form-urlencoded", 400),
        (b"text=\xff\xfe\xfd", "application/x-www-form-urlencoded", 400),
        (b"text=hello", "text/plain", 400),
        (LIST_BYTES, "application/x-www-form-urlencoded; charset=klingon", 200),
    ],
)
async def test_signed_but_malformed_bodies_get_400_never_500(
    bot: Harness, body: bytes, content_type: str, status: int
) -> None:
    assert bot.session is not None
    headers = _signed(body) | {"Content-Type": content_type}
    async with bot.session.post(f"{bot.url}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == status, await resp.text()


async def test_a_bad_timestamp_header_is_401_not_500(bot: Harness) -> None:
    body = "command=%2Fincident&text=list&user_id=UALICE&channel_id=C1&trigger_id=t1"
    headers = sign(body) | {"X-Slack-Request-Timestamp": "abc"}
    status, _ = await bot.post_raw(body, headers, "application/x-www-form-urlencoded")
    assert status == 401


def _signed(body: bytes) -> dict[str, str]:
    """Slack's signature over exact bytes (which need not be valid UTF-8)."""
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def test_titles_compare_in_unicode_and_keep_readable_channels(bot: Harness) -> None:
    for title in ("数据库宕机", "支付失败", "Ошибка оплаты", "ОШИБКА  оплаты"):
        await bot.run(f"declare sev2 {title}", user="UALICE")
    incidents = await bot.fb.service.list_open()
    assert sorted(i.title for i in incidents) == ["Ошибка оплаты", "支付失败", "数据库宕机"]
    assert "Nothing new was created" in bot.last_reply(), "the same title in other case is the same incident"
    today = f"{datetime.now(UTC):%Y%m%d}"
    assert sorted(i.channel_name or "" for i in incidents) == sorted(
        [f"inc-{today}-shujukudangji", f"inc-{today}-zhifushibai", f"inc-{today}-oshibka-oplaty"]
    )


async def test_a_resolved_incident_does_not_absorb_a_new_declare(bot: Harness) -> None:
    await bot.run("declare sev2 Queue backlog", user="UALICE")
    (first,) = await bot.fb.service.list_open()
    await bot.run("resolve drained", channel=first.channel_id or "")
    await bot.run("declare sev2 Queue backlog", user="UALICE")  # it's back, minutes later
    (second,) = await bot.fb.service.list_open()
    assert second.id != first.id and "Declared *INC-2*" in bot.last_reply()


@pytest.mark.parametrize("typo", ["sev99 Outage", "SEV 1 Outage", "sev1: Outage", "sev-1 Outage", "sev Outage"])
async def test_a_mistyped_severity_gets_usage_and_creates_nothing(bot: Harness, typo: str) -> None:
    ack = await bot.run(f"declare {typo}")
    assert ack["response_type"] == "ephemeral" and "Usage: `/incident declare" in ack["text"]
    assert "is not a severity" in ack["text"]
    assert await bot.fb.service.list_open() == [] and bot.slack.calls_to("conversations.create") == []


async def test_validation_happens_before_the_ack(bot: Harness) -> None:
    ack = await bot.run("declare sev2 " + "x" * 200)
    assert "Declaring" not in ack["text"] and "Keep the title under 150 characters (this one has 200)" in ack["text"]
    await bot.run("declare sev2 Next minutes")
    (inc,) = await bot.fb.service.list_open()
    for bad in ("update rolling back next -5", "update next 1.5", "update next 0", "update next 99999"):
        ack = await bot.run(bad, channel=inc.channel_id or "")
        assert "`next` takes" in ack["text"], (bad, ack)
    ack = await bot.run("update will retry next week", channel=inc.channel_id or "")
    assert ack == {}, "'next week' is words, not an ETA"


async def test_deduplicated_declares_do_not_burn_incident_numbers(bot: Harness) -> None:
    for _ in range(20):
        await bot.command("declare sev3 Same thing again")
    await bot.settle()
    await bot.run("declare sev3 Something else")
    refs = sorted(i.ref for i in await bot.fb.service.list_open())
    assert refs == ["INC-1", "INC-2"]


async def test_a_long_timeline_is_paged_within_slacks_limits(bot: Harness) -> None:
    await bot.run("declare sev2 Chatty incident")
    (inc,) = await bot.fb.service.list_open()
    channel = inc.channel_id or ""
    for n in range(60):
        await bot.command(f"note observation {n:02d} " + "lorem ipsum dolor " * 150, channel=channel)
    await bot.settle()
    assert len([e for e in await bot.fb.service.timeline(inc.id) if isinstance(e.payload, NoteAdded)]) == 60
    await bot.run("timeline", channel=channel)
    first = bot.slack.responses[-1]
    assert len(first["blocks"]) <= 50 and "observation 59" in json.dumps(first)
    assert f"older: `/incident timeline {inc.ref} 2`" in json.dumps(first)
    seen = set()
    page = 1
    while True:
        await bot.run(f"timeline {page}", channel=channel)
        reply = json.dumps(bot.slack.responses[-1])
        seen |= {n for n in range(60) if f"observation {n:02d}" in reply}
        if "older:" not in reply:
            break
        page += 1
    assert seen == set(range(60)) and page > 1, "every entry is on some page"


async def test_form_encoded_slash_command_with_utf8_works(bot: Harness) -> None:
    status, _ = await bot.post_raw(LIST, sign(LIST), "application/x-www-form-urlencoded; charset=utf-8")
    assert status == 200


async def test_slacks_certificate_check_is_answered_and_nothing_else(bot: Harness) -> None:
    status, body = await bot.post_raw("ssl_check=1&token=whatever", {}, "application/x-www-form-urlencoded")
    assert (status, body) == (200, "")
    status, _ = await bot.post_raw("text=declare+x&ssl_check=1", {}, "application/json")
    assert status == 401
    assert bot.slack.calls == [] and await bot.fb.service.list_open() == []
