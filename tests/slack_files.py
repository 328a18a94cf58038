"""File uploads for the Slack stand-in, as Slack's current flow has them (files.upload is retired):
files.getUploadURLExternal, a POST of the bytes to the upload URL it returns, files.completeUploadExternal; and
the image blocks that show such a file by id (Block Kit's slack_file object)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.slack_rules import SlackFailure

IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
"""An image block shows PNG, JPEG or GIF files only (the image block's documented formats)."""
MAX_ALT_TXT = 1000
MAX_IMAGE_TEXT = 2000


@dataclass
class Upload:
    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str = ""
    completed: bool = False
    shared_to: list[str] = field(default_factory=list)


class Files:
    """Mixed into SlackStandIn: uploads by file id, and the image checks chat.postMessage and chat.update make."""

    files: dict[str, Upload]
    url: str
    _file_ids = itertools.count(1)

    def m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack: filename and length are required; a length of 0 (or none) answers missing_argument, a
        # non-integer invalid_arguments, an alt_txt over 1,000 characters alt_txt_too_large.
        filename = str(args.get("filename") or "")
        raw = str(args.get("length") or "")
        if not filename or not raw or raw == "0":
            raise SlackFailure("missing_argument")
        if not raw.isdigit():
            raise SlackFailure("invalid_arguments")
        if len(str(args.get("alt_txt") or "")) > MAX_ALT_TXT:
            raise SlackFailure("alt_txt_too_large")
        upload = Upload(id=f"F{next(self._file_ids):010d}", filename=filename, length=int(raw))
        self.files[upload.id] = upload
        return {"file_id": upload.id, "upload_url": f"{self.url}/upload/v1/{upload.id}"}

    async def upload_bytes(self, request: web.Request) -> web.Response:
        """The upload URL (files.slack.com/upload/v1/... in Slack): the URL itself authorizes, no token. The bytes
        come raw or as a multipart form (Slack's docs send the field `filename`; clients also use `file`); a byte
        count other than the length declared is refused, as Slack does."""
        upload = self.files.get(request.match_info["file_id"])
        if upload is None or upload.completed:
            return web.Response(status=404, text="not found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file", form.get("filename"))
            data = part.file.read() if isinstance(part, web.FileField) else str(part or "").encode()
        else:
            data = await request.read()
        if len(data) != upload.length:
            return web.Response(status=400, text=f"length mismatch: declared {upload.length}, sent {len(data)}")
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    def m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack: `files` is a JSON array of {id, title?}; an id not uploaded to (or not issued) answers
        # file_not_found. Without channel_id or channels the file is shared nowhere: private to its uploader.
        try:
            items = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files")
        except (KeyError, ValueError):
            raise SlackFailure("invalid_arguments") from None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) and i.get("id") for i in items):
            raise SlackFailure("invalid_arguments")
        done = []
        for item in items:
            upload = self.files.get(str(item["id"]))
            if upload is None or upload.data is None:
                raise SlackFailure("file_not_found")
            upload.completed, upload.title = True, str(item.get("title") or upload.filename)
            for channel in (args.get("channel_id"), *str(args.get("channels") or "").split(",")):
                if channel:
                    upload.shared_to.append(str(channel))
            done.append({"id": upload.id, "name": upload.filename, "title": upload.title, "size": upload.length})
        return {"files": done}

    def check_image(self, block: dict[str, Any]) -> None:
        """An image block: alt_text 1-2,000 characters; image_url, or a slack_file with exactly one of id and url
        (Slack refuses both); a file id must be a completed upload whose bytes are an image. Slack answers
        invalid_blocks to each of these, and also to a file it has not finished processing."""
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not 0 < len(alt) <= MAX_IMAGE_TEXT:
            raise SlackFailure("invalid_blocks")
        if len((block.get("title") or {}).get("text") or "") > MAX_IMAGE_TEXT:
            raise SlackFailure("invalid_blocks")
        slack_file = block.get("slack_file")
        if slack_file is None:
            if not block.get("image_url"):
                raise SlackFailure("invalid_blocks")
            return
        if not isinstance(slack_file, dict) or ("id" in slack_file) == ("url" in slack_file):
            raise SlackFailure("invalid_blocks")
        if "id" in slack_file:
            upload = self.files.get(str(slack_file["id"]))
            if upload is None or not upload.completed or not (upload.data or b"").startswith(IMAGE_MAGIC):
                raise SlackFailure("invalid_blocks")
