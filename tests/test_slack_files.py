"""The stand-in's file uploads and image blocks refuse what Slack refuses, so the chart tests can't pass on an upload
or a message real Slack would turn down."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.harness import BOT_TOKEN
from tests.slack_standin import SlackStandIn

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24


async def api(session: aiohttp.ClientSession, slack: SlackStandIn, method: str, **args: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
    async with session.post(f"{slack.url}/api/{method}", data=args, headers=headers) as resp:
        answer: dict[str, Any] = await resp.json()
        return answer


def image(file: dict[str, str]) -> str:
    return json.dumps([{"type": "image", "slack_file": file, "alt_text": "chart"}])


async def test_uploads_and_image_blocks_are_refused_where_slack_refuses_them(slack: SlackStandIn) -> None:
    channel = slack.by_name("incidents").id
    async with aiohttp.ClientSession() as session:
        assert (await api(session, slack, "files.getUploadURLExternal", filename="a.png", length="0"))[
            "error"
        ] == "missing_argument"
        assert (await api(session, slack, "files.getUploadURLExternal", filename="a.png", length="x"))[
            "error"
        ] == "invalid_arguments"
        got = await api(session, slack, "files.getUploadURLExternal", filename="a.png", length=str(len(PNG)))
        file_id, url = got["file_id"], got["upload_url"]
        assert file_id.startswith("F") and url.startswith(slack.url)

        # Not uploaded yet: completing it and showing it are both refused.
        files = json.dumps([{"id": file_id, "title": "Chart"}])
        assert (await api(session, slack, "files.completeUploadExternal", files=files))["error"] == "file_not_found"
        async with session.post(url, data=PNG[:-1]) as short:
            assert short.status == 400, "a byte count other than the length declared"
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="a.png")
        async with session.post(url, data=form) as sent:
            assert sent.status == 200, "multipart, as Slack's own examples send it"
        blocks = image({"id": file_id})
        refused = await api(session, slack, "chat.postMessage", channel=channel, text="x", blocks=blocks)
        assert refused["error"] == "invalid_blocks", "uploaded but not completed"
        assert (await api(session, slack, "files.completeUploadExternal", files="not json"))["error"] == (
            "invalid_arguments"
        )
        done = await api(session, slack, "files.completeUploadExternal", files=files)
        assert done["ok"] and done["files"][0]["id"] == file_id and slack.files[file_id].shared_to == []

        shown = await api(session, slack, "chat.postMessage", channel=channel, text="x", blocks=blocks)
        assert shown["ok"], shown
        both = image({"id": file_id, "url": "https://files.slack.com/x.png"})
        assert (await api(session, slack, "chat.postMessage", channel=channel, text="x", blocks=both))[
            "error"
        ] == "invalid_blocks"
        unknown = image({"id": "F0000000000"})
        assert (await api(session, slack, "chat.postMessage", channel=channel, text="x", blocks=unknown))[
            "error"
        ] == "invalid_blocks"

        # A completed file whose bytes are no image can't be shown as one.
        text = await api(session, slack, "files.getUploadURLExternal", filename="a.txt", length="5")
        async with session.post(text["upload_url"], data=b"hello") as sent:
            assert sent.status == 200
        await api(session, slack, "files.completeUploadExternal", files=json.dumps([{"id": text["file_id"]}]))
        not_image = image({"id": text["file_id"]})
        assert (await api(session, slack, "chat.postMessage", channel=channel, text="x", blocks=not_image))[
            "error"
        ] == "invalid_blocks"
