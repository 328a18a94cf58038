"""Getting a reply to the person who asked: response_url first, then an ephemeral message, then a DM."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.render.replies import Reply

log = logging.getLogger(__name__)

Deliver = Callable[[Reply], Awaitable[None]]


def ephemeral(client: AsyncWebClient, response_url: str | None, channel_id: str, user: str) -> Deliver:
    """Reply through the response_url when there is one, else as an ephemeral message (or a DM)."""

    async def deliver(reply: Reply) -> None:
        if response_url:
            hook = AsyncWebhookClient(response_url, session=client.session)
            try:
                resp = await hook.send(
                    text=reply.text, blocks=reply.blocks, response_type="ephemeral", replace_original=reply.replace
                )
                if resp.status_code == 200:
                    return
                log.warning("response_url answered %s; falling back to chat.postEphemeral", resp.status_code)
            except Exception:
                log.warning("response_url delivery failed; falling back to chat.postEphemeral", exc_info=True)
        try:
            await client.chat_postEphemeral(channel=channel_id, user=user, text=reply.text, blocks=reply.blocks)
        except Exception:
            await client.chat_postMessage(channel=user, text=reply.text, blocks=reply.blocks)

    return deliver


def ephemeral_only(client: AsyncWebClient, channel_id: str, user: str | None) -> Deliver:
    """For events, which have no response_url: an ephemeral message to whoever acted, if anyone did."""

    async def deliver(reply: Reply) -> None:
        if user:
            await client.chat_postEphemeral(channel=channel_id, user=user, text=reply.text, blocks=reply.blocks)

    return deliver
