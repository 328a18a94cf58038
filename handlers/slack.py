"""The bolt app: one /incident listener routed through the subcommand registry, plus buttons, form and pins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack_blocks import CLAIM_IC_ACTION
from bot.errors import FirebreakError
from bot.jobs import Jobs
from bot.metrics import Metrics
from bot.models import IC, ChatMessage
from bot.refs import parse_incident_ref
from bot.service import IncidentService
from handlers.commands import outcome_reply
from handlers.commands import registry as default_registry
from handlers.modal import DECLARE_CALLBACK, read_declare_submission
from handlers.registry import CommandContext, Registry, Reply, render_usage

log = logging.getLogger(__name__)
DEDUPE_SECONDS = 3600

Deliver = Callable[[Reply], Awaitable[None]]


class SlackHandlers:
    """Listeners share these collaborators; each listener acks first and hands slow work to Jobs."""

    def __init__(
        self,
        service: IncidentService,
        client: AsyncWebClient,
        jobs: Jobs,
        metrics: Metrics,
        registry: Registry,
    ) -> None:
        self.service = service
        self.client = client
        self.jobs = jobs
        self.metrics = metrics
        self.registry = registry

    async def once(self, key: str) -> bool:
        """First delivery of a Slack retry or a double submit wins; the rest are acknowledged and dropped."""
        return await self.service.store.claim(key, DEDUPE_SECONDS)

    def after_ack(self, job: str, work: Callable[[], Awaitable[Reply | None]], deliver: Deliver) -> None:
        async def run() -> None:
            try:
                reply = await work()
                self.metrics.commands.labels(job, "ok").inc()
            except FirebreakError as exc:
                reply = Reply(f":warning: {exc}")
                self.metrics.commands.labels(job, "user_error").inc()
            except Exception:
                log.exception("%s failed after ack", job)
                reply = Reply(
                    f":x: firebreak hit an internal error while running `{job}`. The incident record is safe; "
                    "try again, and if it repeats ask your firebreak admin to check the bot's logs."
                )
                self.metrics.commands.labels(job, "failed").inc()
            if reply is not None:
                try:
                    await deliver(reply)
                except Exception:
                    log.exception("could not deliver the reply to %s", job)

        self.jobs.spawn(job, run())

    def ephemeral(self, response_url: str | None, channel_id: str, user: str) -> Deliver:
        """Reply through the response_url when there is one, else as an ephemeral message (or a DM)."""

        async def deliver(reply: Reply) -> None:
            if response_url:
                hook = AsyncWebhookClient(response_url, session=self.client.session)
                try:
                    resp = await hook.send(
                        text=reply.text, blocks=reply.blocks, response_type="ephemeral", replace_original=False
                    )
                    if resp.status_code == 200:
                        return
                    log.warning("response_url answered %s; falling back to chat.postEphemeral", resp.status_code)
                except Exception:
                    log.warning("response_url delivery failed; falling back to chat.postEphemeral", exc_info=True)
            try:
                await self.client.chat_postEphemeral(
                    channel=channel_id, user=user, text=reply.text, blocks=reply.blocks
                )
            except Exception:
                await self.client.chat_postMessage(channel=user, text=reply.text, blocks=reply.blocks)

        return deliver

    # ---- /incident --------------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            await self._on_command(ack, body)
        except Exception:
            # Before the ack only our own store can fail; Slack would show a bare "failed with error 500".
            log.exception("slash command failed before its ack")
            await ack(
                response_type="ephemeral",
                text=":x: firebreak can't reach its database right now, so nothing was done. "
                "Try again in a moment; if it persists, tell your firebreak admin (`/readyz` shows why).",
            )

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        text = (body.get("text") or "").strip()
        user, channel_id, trigger_id = body["user_id"], body.get("channel_id", ""), body.get("trigger_id")
        name, _, rest = text.partition(" ")
        sub = self.registry.get(name or "help")
        if sub is None:
            await ack(
                response_type="ephemeral",
                text=f"I don't know `{name}`. Here's what I can do:\n{self.registry.usage(self.service.config)}",
            )
            return
        try:
            ref = None
            if sub.needs_incident:
                first, _, after = rest.strip().partition(" ")
                if first and (ref := parse_incident_ref(first)) is not None:
                    rest = after
            args = sub.parse(rest, self.service.config)
            incident = await self.service.find(ref, channel_id) if sub.needs_incident else None
        except FirebreakError as exc:
            usage = render_usage(sub, self.service.config)
            await ack(response_type="ephemeral", text=f":warning: {exc}\nUsage: `{usage}`")
            return
        if trigger_id and not await self.once(f"slack:trigger:{trigger_id}"):
            await ack()
            return
        ack_text = sub.ack_text(args)
        await ack(response_type="ephemeral", text=ack_text) if ack_text else await ack()
        ctx = CommandContext(self.service, self.client, user, channel_id, trigger_id, incident)
        self.after_ack(sub.name, lambda: sub.run(ctx, args), self.ephemeral(body.get("response_url"), channel_id, user))

    # ---- buttons and the declare form -------------------------------------------------------------

    async def on_claim_ic(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        action = body["actions"][0]
        channel_id = (body.get("channel") or {}).get("id", "")

        async def work() -> Reply:
            incident = await self.service.get(int(action["value"]))
            outcome = await self.service.assign_role(incident, IC, user, user)
            return outcome_reply(outcome, f"You're now IC of {incident.ref}.", f"You're already IC of {incident.ref}.")

        self.after_ack("claim_ic", work, self.ephemeral(body.get("response_url"), channel_id, user))

    async def on_declare_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        title, severity, description, errors = read_declare_submission(view)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        if not await self.once(f"slack:view:{view['id']}"):
            return
        user = body["user"]["id"]

        async def work() -> Reply:
            outcome = await self.service.declare(title=title, severity=severity, description=description, actor=user)
            i = outcome.incident
            return outcome_reply(
                outcome,
                f":rotating_light: Declared *{i.ref}* ({i.sev_label}) in <#{i.channel_id}>. You're IC.",
                f"You declared *{i.ref}* moments ago: <#{i.channel_id}>. Nothing new was created.",
            )

        self.after_ack("declare", work, self.ephemeral(None, view.get("private_metadata") or user, user))

    # ---- events: pins and :pushpin: reactions join the timeline -----------------------------------

    async def on_pin_added(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        channel_id = event.get("channel_id") or item.get("channel")
        if item.get("type") != "message" or not message.get("ts") or not channel_id:
            return
        if not await self.once(f"slack:event:{body.get('event_id')}"):
            return
        pinned = ChatMessage(ts=message["ts"], text=message.get("text", ""), user=message.get("user"))
        self._record_pin(channel_id, pinned.ts, event.get("user"), pinned)

    async def on_reaction_added(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") != "pushpin" or item.get("type") != "message":
            return
        if not await self.once(f"slack:event:{body.get('event_id')}"):
            return
        self._record_pin(item["channel"], item["ts"], event.get("user"), None)

    def _record_pin(self, channel_id: str, ts: str, actor: str | None, message: ChatMessage | None) -> None:
        async def work() -> None:
            await self.service.record_pin(channel_id, ts, actor, message)

        async def report(reply: Reply) -> None:
            if actor:
                await self.client.chat_postEphemeral(channel=channel_id, user=actor, text=reply.text)

        self.after_ack("pin", work, report)


def build_bolt_app(
    *,
    service: IncidentService,
    client: AsyncWebClient,
    jobs: Jobs,
    metrics: Metrics,
    signing_secret: str | None,
    registry: Registry | None = None,
) -> AsyncApp:
    """The bolt app; ack-before-work is ours (process_before_response) so acks never wait on Slack."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        process_before_response=True,
    )
    h = SlackHandlers(service, client, jobs, metrics, registry or default_registry)
    app.command(service.config.command)(h.on_command)
    app.action(CLAIM_IC_ACTION)(h.on_claim_ic)
    app.view(DECLARE_CALLBACK)(h.on_declare_submit)
    app.event("pin_added")(h.on_pin_added)
    app.event("reaction_added")(h.on_reaction_added)
    for ignored in ("pin_removed", "reaction_removed"):
        app.event(ignored)(_ignore)
    return app


async def _ignore() -> None:
    """Subscribed events firebreak has no use for yet; registered so bolt doesn't warn on every one."""
