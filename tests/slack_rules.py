"""What Slack refuses, for the stand-in: Block Kit and message size limits, each copied from Slack's documentation.

- blocks: at most 50 per message (100 per modal); a section's text 1-3000 characters, at most 10 fields of
  2000; a header 150 plain-text characters; a context at most 10 elements; an actions block 25 elements
  (docs.slack.dev/reference/block-kit/blocks). Too many or too long answers `invalid_blocks`.
- the text of all blocks together: Slack answers `msg_blocks_too_long` somewhere past ~11-13k characters
  (measured by others; undocumented), so the stand-in refuses past 12,000.
- image blocks: refused unless the stand-in's file checks pass (tests/slack_files.py).
- chat.update and chat.postEphemeral refuse `text` over 4,000 characters with `msg_too_long`;
  chat.postMessage truncates past 40,000 and warns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_BLOCKS_TEXT = 12_000
MAX_EDIT_TEXT = 4_000


class SlackFailure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_blocks(
    blocks: Any, *, limit: int = MAX_BLOCKS, images: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """`images` checks an image block (the files it names live in the stand-in); without it, one is refused."""
    if blocks is None:
        return
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise SlackFailure("invalid_blocks")
    total = 0
    for b in blocks:
        kind = b.get("type")
        text = (b.get("text") or {}).get("text", "")
        total += len(text)
        if kind == "section":
            fields = b.get("fields") or []
            total += sum(len(f.get("text", "")) for f in fields)
            if (not text and not fields) or len(text) > 3000 or len(fields) > 10:
                raise SlackFailure("invalid_blocks")
            if any(len(f.get("text", "")) > 2000 for f in fields):
                raise SlackFailure("invalid_blocks")
        elif kind == "header":
            if b["text"]["type"] != "plain_text" or not 0 < len(text) <= 150:
                raise SlackFailure("invalid_blocks")
        elif kind == "context":
            elements = b.get("elements", [])
            total += sum(len(e.get("text", "")) for e in elements)
            if not 0 < len(elements) <= 10:
                raise SlackFailure("invalid_blocks")
        elif kind == "actions":
            elements = b.get("elements", [])
            if not 0 < len(elements) <= 25:
                raise SlackFailure("invalid_blocks")
            check_elements(elements)
        elif kind == "image":
            if images is None:
                raise SlackFailure("invalid_blocks")
            images(b)
        elif kind not in ("input", "divider"):
            raise SlackFailure("invalid_blocks")
    if limit == MAX_BLOCKS and total > MAX_BLOCKS_TEXT:
        raise SlackFailure("msg_blocks_too_long")


def check_elements(elements: list[dict[str, Any]]) -> None:
    """Slack's button rules (Block Kit reference, button element): an action_id "should be unique among all other
    action_ids in the containing block" (a repeat is refused as invalid_blocks) and is at most 255 characters; a
    value is at most 2000 characters and the button's text at most 75."""
    ids = [str(e["action_id"]) for e in elements if e.get("action_id")]
    if len(set(ids)) != len(ids) or any(len(i) > 255 for i in ids):
        raise SlackFailure("invalid_blocks")
    for e in elements:
        if e.get("type") == "button" and (len(e.get("value", "")) > 2000 or len(e["text"]["text"]) > 75):
            raise SlackFailure("invalid_blocks")


def check_message(
    args: dict[str, Any], *, edit: bool = False, images: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """A message's blocks, and its text where Slack refuses (edits and ephemeral messages) rather than truncates."""
    check_blocks(args.get("blocks"), images=images)
    if edit and len(str(args.get("text") or "")) > MAX_EDIT_TEXT:
        raise SlackFailure("msg_too_long")


def channel_object(ch: Any, bot_user: str) -> dict[str, Any]:
    return {
        "id": ch.id,
        "name": ch.name,
        "is_channel": not ch.is_private,
        "is_private": ch.is_private,
        "is_archived": False,
        "is_member": bot_user in ch.members,
        "created": ch.created,
        "creator": ch.creator,
        "topic": {"value": ch.topic},
    }


def with_metadata(messages: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]]:
    """Slack returns message metadata only to a reader who asks for it with include_all_metadata."""
    if str(args.get("include_all_metadata", "false")).lower() in ("true", "1"):
        return messages
    return [{k: v for k, v in m.items() if k != "metadata"} for m in messages]


def error_response(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})
