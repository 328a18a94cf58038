"""Chat on the Slack Web API: calls, rate-limit retries, and Slack errors turned into messages people can act on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.config import IncidentConfig
from bot.core.errors import ChannelNameTaken, ChatError
from bot.core.metrics import Metrics
from bot.models import ChatMessage, Incident, Post, Triage
from bot.render.alerts import triage_message
from bot.render.posts import render_post, topic

log = logging.getLogger(__name__)

AUTH_HELP = "Slack rejected firebreak's token ({code}). An admin needs to check SLACK_BOT_TOKEN or reinstall the app."
ERROR_HELP = {
    "not_in_channel": "firebreak isn't a member of {where}. Add it there with `/invite @firebreak`, then try again.",
    "channel_not_found": "Slack can't find {where}, or firebreak can't see it (private channel?). "
    "Check the channel, or invite firebreak to it.",
    "is_archived": "{where} is archived. Unarchive it or use another channel.",
    "invalid_auth": AUTH_HELP,
    "not_authed": AUTH_HELP,
    "account_inactive": AUTH_HELP,
    "token_revoked": AUTH_HELP,
    "missing_scope": "firebreak's Slack app lacks the scope {needed} for {method}. "
    "Add it (see deploy/slack-manifest.yaml) and reinstall the app.",
    "ratelimited": "Slack is rate-limiting firebreak ({method}) even after waiting; try again in a minute.",
    "restricted_action": "The workspace doesn't let firebreak do {method} here; ask a Slack admin.",
    "name_taken": "A channel named {where} exists already.",
}


def make_client(
    token: str, base_url: str, *, session: aiohttp.ClientSession | None = None, max_rate_limit_retries: int = 3
) -> AsyncWebClient:
    """Web API client that waits out 429s (honouring Retry-After) before giving up.

    Pass a long-lived session to keep connections to Slack alive between calls.
    """
    client = AsyncWebClient(token=token, base_url=base_url, session=session)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries))
    return client


def chat_error(exc: SlackApiError, method: str, where: str) -> ChatError:
    data: dict[str, Any] = dict(exc.response.data) if isinstance(exc.response.data, dict) else {}
    code = str(data.get("error", "unknown_error"))
    template = ERROR_HELP.get(code, "Slack refused {method} ({code}).")
    message = template.format(code=code, method=method, where=where, needed=data.get("needed", "?"))
    cls = ChannelNameTaken if code == "name_taken" else ChatError
    return cls(message, code=code, method=method)


POST_EVENT = "firebreak_post"
"""Message metadata event type: firebreak's posts carry their idempotency key under it."""
RECOVERY_SCAN = 200
RECOVERY_PAGES = 5
"""A resumed operation looks through up to 1,000 messages for its earlier post ..."""
RECOVERY_WINDOW_SECONDS = 7 * 3600
"""... posted within the last 7 hours (jobs are retried for 6)."""


IMAGE_RETRY_SECONDS = (1.0, 3.0)
"""A message showing a file Slack is still processing (just uploaded) can be refused with invalid_blocks: post
again after these waits; past them, the panel posts without its image."""
NO_IMAGE = "No chart: Slack would not show the uploaded image (invalid_blocks)."


def is_channel_id(ref: str) -> bool:
    return ref[:1] in ("C", "G") and ref.isalnum() and ref.isupper()


class SlackChat:
    def __init__(self, client: AsyncWebClient, config: IncidentConfig, metrics: Metrics | None = None) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics
        self._channel_ids: dict[str, str] = {}
        self._bot_user: str | None = None
        self.pace: Callable[[str], Awaitable[None]] | None = None
        """Waits for the channel's next posting slot (RedisPacer.wait); the composition root sets it."""
        self.image_retry: Sequence[float] = IMAGE_RETRY_SECONDS

    async def _call(self, method: str, where: str, fn: Callable[[], Awaitable[Any]], ignore: Sequence[str] = ()) -> Any:
        try:
            return await fn()
        except SlackApiError as exc:
            err = chat_error(exc, method, where)
            if err.code in ignore:
                return None
            if self.metrics:
                self.metrics.slack_api_errors.labels(method, err.code).inc()
            log.warning("slack %s failed: %s", method, err.code)
            raise err from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            if self.metrics:
                self.metrics.slack_api_errors.labels(method, "unreachable").inc()
            raise ChatError(f"Couldn't reach Slack for {method}: {exc!r}", code="unreachable", method=method) from exc

    async def resolve_channel(self, ref: str) -> str:
        """Channel ids pass through; a #name is looked up once (chat.update and others take only ids)."""
        if is_channel_id(ref):
            return ref
        name = ref.lstrip("#").lower()
        if name not in self._channel_ids:
            self._channel_ids[name] = await self._find_channel(name)
        return self._channel_ids[name]

    async def _find_channel(self, name: str) -> str:
        found = await self._channel_named(name)
        if found is None:
            raise ChatError(
                f"Slack has no channel #{name} that firebreak can see. Check FIREBREAK_ANNOUNCE_CHANNEL; for a "
                "private channel, invite firebreak to it first.",
                code="channel_not_found",
                method="conversations.list",
            )
        return str(found["id"])

    async def _channel_named(self, name: str) -> dict[str, Any] | None:
        """The channel object of that name, paging through conversations.list (tier 2: used sparingly).

        Private channels need the groups:read scope; an app installed without it still finds public ones.
        """
        try:
            return await self._list_for(name, "public_channel,private_channel")
        except ChatError as exc:
            if exc.code not in ("missing_scope", "invalid_types"):
                raise
            return await self._list_for(name, "public_channel")

    async def _list_for(self, name: str, types: str) -> dict[str, Any] | None:
        cursor = None
        while True:
            resp = await self._call(
                "conversations.list",
                f"#{name}",
                partial(
                    self.client.conversations_list,
                    types=types,
                    exclude_archived=True,
                    limit=1000,
                    cursor=cursor,
                ),
            )
            for channel in resp.get("channels", []):
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def bot_user(self) -> str:
        if self._bot_user is None:
            auth = await self._call("auth.test", "Slack", self.client.auth_test)
            self._bot_user = str(auth["user_id"])
        return self._bot_user

    async def channel_info(self, channel_id: str) -> dict[str, Any]:
        resp = await self._call(
            "conversations.info", _where(channel_id), lambda: self.client.conversations_info(channel=channel_id)
        )
        return dict(resp["channel"])

    async def post_triage(self, channel: str, triage: Triage, *, key: str) -> str:
        text, blocks = triage_message(triage)
        return await self._send(channel, text, blocks, key=key, recover=True)

    async def edit_triage(self, channel: str, ts: str, triage: Triage) -> None:
        text, blocks = triage_message(triage)
        await self._update(channel, ts, text, blocks)

    async def group_members(self, group_id: str) -> set[str]:
        resp = await self._call(
            "usergroups.users.list", group_id, lambda: self.client.usergroups_users_list(usergroup=group_id)
        )
        return set(resp["users"])

    async def create_channel(self, name: str, *, adopt: bool = False) -> str:
        try:
            resp = await self._call(
                "conversations.create",
                f"#{name}",
                lambda: self.client.conversations_create(name=name, is_private=False),
            )
        except ChannelNameTaken:
            if not adopt:
                raise
            # An earlier attempt may have created it and crashed before recording it: adopt it if it is
            # firebreak's own (Slack says who created a channel), never a channel a person made.
            existing = await self._channel_named(name)
            if existing is None or existing.get("creator") != await self.bot_user():
                raise
            log.info("adopting #%s (%s), created by an earlier attempt", name, existing["id"])
            return str(existing["id"])
        return str(resp["channel"]["id"])

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None:
        await self._call(
            "conversations.invite",
            f"<#{channel_id}>",
            lambda: self.client.conversations_invite(channel=channel_id, users=",".join(user_ids)),
            ignore=("already_in_channel", "cant_invite_self"),
        )

    async def set_topic(self, channel_id: str, incident: Incident) -> None:
        await self._call(
            "conversations.setTopic",
            f"<#{channel_id}>",
            lambda: self.client.conversations_setTopic(channel=channel_id, topic=topic(incident)),
        )

    async def post(self, channel: str, post: Post, *, key: str | None = None, recover: bool = False) -> str:
        text, blocks = render_post(post, self.config)
        send = partial(self._send, channel, key=key, thread_ts=post.thread_ts, unfurl_links=False)
        if post.evidence is None or post.evidence.chart is None:
            return await send(text, blocks, recover=recover)
        for delay in (*self.image_retry, None):
            try:
                return await send(text, blocks, recover=recover)
            except ChatError as exc:
                if exc.code != "invalid_blocks":
                    raise
                if delay is None:
                    break
                log.info("slack refused the evidence image (still processing?); posting again in %g s", delay)
                await asyncio.sleep(delay)
                recover = True  # refused, so not posted by us; but look first, in case a replica took over
        without = post.evidence.model_copy(update={"chart": None, "chart_note": NO_IMAGE})
        text, blocks = render_post(post.model_copy(update={"evidence": without}), self.config)
        return await send(text, blocks, recover=True)

    async def upload_image(self, filename: str, title: str, alt_text: str, data: bytes) -> str:
        """files.getUploadURLExternal, the bytes to the URL it gives, then files.completeUploadExternal with no
        channel (slack_sdk's files_upload_v2): the file stays private to firebreak and a message shows it by id.
        The message's image block carries `alt_text`, for screen readers."""

        async def upload() -> Any:
            try:
                return await self.client.files_upload_v2(content=data, filename=filename, title=title)
            except SlackApiError as exc:  # either Web API call; name the one that refused
                api_url = getattr(exc.response, "api_url", "")
                method = str(api_url).rsplit("/", 1)[-1] or "files.getUploadURLExternal"
                err = chat_error(exc, method, "Slack")
            except SlackRequestError as exc:  # the upload URL answered other than 200
                method = "upload"
                err = ChatError(f"Slack refused the image's bytes ({exc})"[:400], code="upload_failed", method=method)
            if self.metrics:  # counted and logged as every other refused call is
                self.metrics.slack_api_errors.labels(method, err.code).inc()
            log.warning("slack %s failed: %s", method, err.code)
            raise err

        resp = await self._call("files.upload_v2", "Slack", upload)
        try:
            return str(resp["files"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise ChatError("Slack's answer to the upload named no file", code="no_file", method="upload") from None

    async def _send(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        key: str | None,
        recover: bool,
        thread_ts: str | None = None,
        **options: Any,
    ) -> str:
        """Post once: with `key` and `recover`, a message already posted with that key is found instead; the
        channel's posting slot is waited for (pacing) before the call."""
        if key and recover and (found := await self._posted(channel, key, thread_ts)):
            log.info("found %s already posted (%s); not posting it again", key, found)
            return found
        metadata = {"event_type": POST_EVENT, "event_payload": {"key": key}} if key else None
        if self.pace is not None:
            await self.pace(channel)
        resp = await self._call(
            "chat.postMessage",
            _where(channel),
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata, **options
            ),
        )
        return str(resp["ts"])

    async def _posted(self, channel: str, key: str, thread_ts: str | None) -> str | None:
        """A recent message of ours carrying `key` in its metadata (Slack has no idempotent post of its own)."""
        oldest = f"{time.time() - RECOVERY_WINDOW_SECONDS:.6f}"
        try:
            channel = await self.resolve_channel(channel)
            cursor = None
            for _ in range(RECOVERY_PAGES):
                if thread_ts:  # replies come oldest first: page through the thread
                    method, fn = "conversations.replies", partial(self.client.conversations_replies, ts=thread_ts)
                else:  # history comes newest first
                    method, fn = "conversations.history", partial(self.client.conversations_history)
                resp = await self._call(
                    method,
                    _where(channel),
                    partial(
                        fn,
                        channel=channel,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=RECOVERY_SCAN,
                        cursor=cursor,
                    ),
                )
                for message in resp.get("messages", []):
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == POST_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                        return str(message["ts"])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except ChatError as exc:
            if exc.transient:
                raise  # look again when Slack answers, rather than guess
            # Can't look (firebreak isn't in the announcement channel): posting again risks a duplicate,
            # not posting risks a loss; a duplicate is the lesser harm.
            log.warning("could not check %s for an earlier post of %s (%s); posting", channel, key, exc.code)
        return None

    async def edit(self, channel: str, ts: str, post: Post) -> None:
        text, blocks = render_post(post, self.config)
        await self._update(channel, ts, text, blocks)

    async def _update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        await self._call(
            "chat.update",
            _where(channel),
            lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
        )

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None:
        resp = await self._call(
            "conversations.history",
            _where(channel),
            lambda: self.client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1),
        )
        messages = [m for m in resp.get("messages", []) if m.get("ts") == ts]
        if not messages:  # a reply inside a thread is not in the channel history
            resp = await self._call(
                "conversations.replies",
                _where(channel),
                lambda: self.client.conversations_replies(channel=channel, ts=ts, latest=ts, inclusive=True, limit=1),
            )
            messages = [m for m in resp.get("messages", []) if m.get("ts") == ts]
        if not messages:
            return None
        m = messages[0]
        return ChatMessage(ts=ts, text=str(m.get("text", "")), user=m.get("user"))


def _where(channel: str) -> str:
    return f"<#{channel}>" if is_channel_id(channel) else channel
