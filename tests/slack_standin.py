"""A Slack Web API stand-in for tests and local runs, reached through the client's base_url.

It keeps channels, messages (with their metadata, returned only to include_all_metadata) and uploaded files
(tests/slack_files.py), answers in Slack's shapes, and enforces the Slack semantics firebreak relies on: bearer-token
auth (invalid_auth), channel names (name_taken, invalid_name_specials), channel ids (only chat.postMessage and
chat.postEphemeral take a #name; chat.update, conversations.* answer channel_not_found to one, as Slack does),
membership (not_in_channel for a bot outside a channel, already_in_channel), message existence for chat.update,
Block Kit size limits and image files (invalid_blocks), cursor pagination of conversations.list, and rate limits
(HTTP 429 with Retry-After). Errors can be scripted per method. response_url posts land on /response/<id>.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.slack_files import Files
from tests.slack_groups import UserGroups
from tests.slack_rules import (
    MAX_MODAL_BLOCKS,
    SlackFailure,
    channel_object,
    check_blocks,
    check_message,
    error_response,
    with_metadata,
)
from tests.slack_socket import SocketModeEndpoint

BOT_USER = "UFIREBREAK"


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    creator: str = "UADMIN"
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""
    is_private: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class Hold:
    method: str
    after: bool
    when: Callable[[dict[str, Any]], bool]
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Scripted:
    error: str
    status: int = 200
    retry_after: int | None = None


class SlackStandIn(UserGroups, Files):
    def __init__(self, bot_token: str = "xoxb-test-token", app_token: str = "xapp-test-token") -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.channels: dict[str, Channel] = {}
        self.groups: dict[str, set[str]] = {}
        self.files = {}
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []
        self.failures: dict[str, list[Scripted]] = {}
        self.gates: dict[str, asyncio.Event] = {}
        """A method with a gate answers only once the test sets it: Slack being slow, without timing."""
        self.holds: list[Hold] = []
        """Calls to hold once (see `hold`)."""
        self.held: list[str] = []
        """Methods of the calls being held right now or before, in the order they were caught."""
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.socket_url: str | None = None
        self.socket = SocketModeEndpoint()

    # ---- scripting and inspection ----------------------------------------------------------------

    def add_channel(
        self, name: str, *, bot_member: bool = True, members: set[str] | None = None, creator: str = "UADMIN"
    ) -> Channel:
        ch = Channel(id=f"C{next(self._ids):08d}", name=name, members=set(members or ()), creator=creator)
        if bot_member:
            ch.members.add(BOT_USER)
        self.channels[ch.id] = ch
        return ch

    def hold(self, method: str, *, after: bool, when: Callable[[dict[str, Any]], bool] = lambda _: True) -> Hold:
        """Catch the next call to `method` (matching `when`): hold it before doing anything, or (`after`) do
        it and hold the answer. The test releases it with `.release.set()`."""
        hold = Hold(method, after, when)
        self.holds.append(hold)
        return hold

    def fail(
        self, method: str, error: str, *, times: int = 1, status: int = 200, retry_after: int | None = None
    ) -> None:
        self.failures.setdefault(method, []).extend(Scripted(error, status, retry_after) for _ in range(times))

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def by_name(self, name: str) -> Channel:
        return next(c for c in self.channels.values() if c.name == name)

    def post_message(self, channel: Channel, text: str, user: str) -> dict[str, Any]:
        """A message a person posted, for pin tests."""
        message = {"type": "message", "user": user, "text": text, "ts": self._ts()}
        channel.messages.append(message)
        return message

    # ---- server ----------------------------------------------------------------------------------

    async def start(self) -> str:
        return await self.start_on(0)

    async def start_on(self, port: int) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_post("/upload/v1/{file_id}", self.upload_bytes)
        app.router.add_get("/socket", self.socket.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.socket_url = f"ws://127.0.0.1:{port}/socket"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self, rid: str) -> str:
        return f"{self.url}/response/{rid}"

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.socket.send_envelope(kind, payload)

    async def _response_url(self, request: web.Request) -> web.Response:
        payload = await request.json()
        try:
            check_blocks(payload.get("blocks"))
        except SlackFailure as exc:
            return web.Response(status=400, text=exc.code)
        payload["_rid"] = request.match_info["rid"]
        self.responses.append(payload)
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(dict(await request.post()))
        for key in ("blocks", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        self.calls.append(Call(method, args))
        if gate := self.gates.get(method):
            await gate.wait()
        hold = next((h for h in self.holds if h.method == method and h.when(args)), None)
        if hold is not None:
            self.holds.remove(hold)
            self.held.append(method)
            if not hold.after:
                await hold.release.wait()
        response = self._answer(method, request, args)
        if hold is not None and hold.after:
            await hold.release.wait()  # done, but the caller hasn't heard: a crash now loses the answer only
        return response

    def _answer(self, method: str, request: web.Request, args: dict[str, Any]) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return error_response("invalid_auth")
        if queue := self.failures.get(method):
            scripted = queue.pop(0)
            headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after is not None else {}
            return web.json_response({"ok": False, "error": scripted.error}, status=scripted.status, headers=headers)
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return error_response("unknown_method")
        try:
            result: dict[str, Any] = handler(args)
        except SlackFailure as exc:
            return error_response(exc.code)
        return web.json_response({"ok": True, **result})

    # ---- methods ---------------------------------------------------------------------------------

    def m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://firebreak-test.slack.com/",
            "team": "Firebreak Test",
            "user": "firebreak",
            "team_id": "T00000001",
            "user_id": BOT_USER,
            "bot_id": "B00000001",
        }

    def m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            raise SlackFailure("not_allowed_token_type")
        return {"url": self.socket_url}

    def m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name", ""))
        if not re.fullmatch(r"[a-z0-9_-]{1,80}", name):
            raise SlackFailure("invalid_name_specials" if name else "invalid_name_required")
        if any(c.name == name for c in self.channels.values()):
            raise SlackFailure("name_taken")
        ch = self.add_channel(name, creator=BOT_USER)
        ch.is_private = str(args.get("is_private", "false")).lower() == "true"
        return {"channel": channel_object(ch, BOT_USER)}

    def m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Cursor-paginated like Slack: `limit` per page (at most 1000), `response_metadata.next_cursor`."""
        limit = int(args.get("limit", 100))
        if not 0 < limit <= 1000:
            raise SlackFailure("invalid_limit")
        types = str(args.get("types", "public_channel")).split(",")
        visible = [
            c
            for c in self.channels.values()
            if ("private_channel" in types and c.is_private and BOT_USER in c.members)
            or ("public_channel" in types and not c.is_private)
        ]
        start = int(str(args.get("cursor") or "0").removeprefix("page-"))
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        return {
            "channels": [channel_object(c, BOT_USER) for c in page],
            "response_metadata": {"next_cursor": f"page-{start + limit}" if more else ""},
        }

    def m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._member_channel(args)
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            raise SlackFailure("no_user")
        if BOT_USER in users:
            raise SlackFailure("cant_invite_self")
        new = [u for u in users if u not in ch.members]
        if not new:
            raise SlackFailure("already_in_channel")
        ch.members.update(new)
        return {"channel": {"id": ch.id}}

    def m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._member_channel(args)
        topic = str(args.get("topic", ""))
        if len(topic) > 250:
            raise SlackFailure("too_long")
        ch.topic = topic
        return {"channel": {"id": ch.id, "topic": {"value": topic}}}

    def m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": channel_object(self._channel(args), BOT_USER)}

    def m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._member_channel(args)
        latest, oldest = float(args.get("latest", "inf")), float(args.get("oldest", "0"))
        inclusive = str(args.get("inclusive", "false")).lower() in ("true", "1")
        msgs = [m for m in ch.messages if "thread_ts" not in m or m["thread_ts"] == m["ts"]]
        msgs = [m for m in msgs if float(m["ts"]) < latest or (inclusive and float(m["ts"]) == latest)]
        msgs = [m for m in msgs if float(m["ts"]) > oldest or (inclusive and float(m["ts"]) == oldest)]
        limit = int(args.get("limit", 100))
        return {"messages": with_metadata(list(reversed(msgs))[:limit], args), "has_more": False}

    def m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._member_channel(args)
        ts = str(args.get("ts"))
        msgs = [m for m in ch.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not msgs:
            raise SlackFailure("thread_not_found")
        return {"messages": with_metadata(msgs, args), "has_more": False}

    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args, names=True)
        if BOT_USER not in ch.members and ch.is_private:
            raise SlackFailure("not_in_channel")
        if not args.get("text") and not args.get("blocks"):
            raise SlackFailure("no_text")
        check_message(args, images=self.check_image)
        message = {"type": "message", "user": BOT_USER, "text": args.get("text", ""), "ts": self._ts()}
        message["blocks"] = args.get("blocks")
        if args.get("metadata"):
            metadata = args["metadata"]
            message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
        if args.get("thread_ts"):
            if not any(m["ts"] == args["thread_ts"] for m in ch.messages):
                raise SlackFailure("thread_not_found")
            message["thread_ts"] = args["thread_ts"]
        ch.messages.append(message)
        return {"channel": ch.id, "ts": message["ts"], "message": message}

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args)
        check_message(args, edit=True, images=self.check_image)
        for m in ch.messages:
            if m["ts"] == args.get("ts"):
                if m["user"] != BOT_USER:
                    raise SlackFailure("cant_update_message")
                m.update(text=args.get("text", ""), blocks=args.get("blocks"))
                return {"channel": ch.id, "ts": m["ts"]}
        raise SlackFailure("message_not_found")

    def m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args, names=True)
        if BOT_USER not in ch.members and ch.is_private:
            raise SlackFailure("not_in_channel")
        if not args.get("user"):
            raise SlackFailure("user_not_in_channel")
        check_message(args, edit=True)
        return {"message_ts": self._ts()}

    def m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("trigger_id"):
            raise SlackFailure("invalid_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal" or len(view["title"]["text"]) > 24:
            raise SlackFailure("invalid_arguments")
        check_blocks(view.get("blocks"), limit=MAX_MODAL_BLOCKS)
        return {"view": {"id": f"V{next(self._ids):08d}", **view}}

    # ---- helpers ---------------------------------------------------------------------------------

    def _ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _channel(self, args: dict[str, Any], *, names: bool = False) -> Channel:
        """By id; by #name or name only where Slack accepts one (chat.postMessage, chat.postEphemeral)."""
        ref = str(args.get("channel", ""))
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if names and ch.name == name and not ch.is_private:
                return ch
        raise SlackFailure("channel_not_found")

    def _member_channel(self, args: dict[str, Any]) -> Channel:
        ch = self._channel(args)
        if BOT_USER not in ch.members:
            raise SlackFailure("not_in_channel")
        return ch


async def _serve_forever(port: int, bot_token: str, announce: str) -> None:
    standin = SlackStandIn(bot_token=bot_token)
    channel = standin.add_channel(announce)
    await standin.start_on(port)
    print(f"slack stand-in on {standin.url}/api/ (announce channel {channel.id} #{announce})", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Run the stand-in on its own, for local runs: SLACK_API_URL=http://127.0.0.1:<port>/api/."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--bot-token", default="xoxb-local-token")
    parser.add_argument("--announce", default="incidents")
    args = parser.parse_args()
    asyncio.run(_serve_forever(args.port, args.bot_token, args.announce))


if __name__ == "__main__":
    main()
