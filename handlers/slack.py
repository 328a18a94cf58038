"""The bolt app, built by looping over the registry: every listener acks first and hands slow work to Jobs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import FirebreakError
from bot.core.jobs import Jobs
from bot.core.metrics import Metrics
from bot.core.ports import ClaimKind, Claims
from bot.core.refs import parse_incident_ref
from bot.core.service import IncidentService
from bot.render.replies import Reply, warning
from handlers import buttons, commands, forms, pins
from handlers.delivery import Deliver, ephemeral, ephemeral_only
from handlers.registry import (
    Action,
    CommandContext,
    EventListener,
    InteractionContext,
    Registry,
    ViewSubmission,
    render_usage,
)

log = logging.getLogger(__name__)
MODULES = (commands, buttons, forms, pins)
"""Every handler module; the registry is built from exactly these."""
DEDUPE_SECONDS = 3600
STORE_DOWN = (
    ":x: firebreak can't reach its database right now, so nothing was done. "
    "Try again in a moment; if it persists, tell your firebreak admin (`/readyz` shows why)."
)

Listener = Callable[..., Awaitable[None]]


class _DropMessage(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def quiet_token_warning() -> None:
    """bolt reads SLACK_BOT_TOKEN from the environment and then warns on every start that the client we pass
    wins over it; both are the same token, so that one warning is noise."""
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _DropMessage) for f in bolt_log.filters):
        bolt_log.addFilter(_DropMessage(warning_client_prioritized_and_token_skipped()))


def default_registry() -> Registry:
    return Registry.from_modules(MODULES)


class SlackHandlers:
    """Listeners share these collaborators; each listener acks first and hands slow work to Jobs."""

    def __init__(
        self,
        service: IncidentService,
        claims: Claims,
        client: AsyncWebClient,
        jobs: Jobs,
        metrics: Metrics,
        registry: Registry,
    ) -> None:
        self.service = service
        self.claims = claims
        self.client = client
        self.jobs = jobs
        self.metrics = metrics
        self.registry = registry

    async def once(self, kind: ClaimKind, ident: str) -> bool:
        """First delivery of a Slack retry or a double submit wins; the rest are acknowledged and dropped."""
        return await self.claims.claim(kind, ident, DEDUPE_SECONDS)

    def after_ack(self, job: str, work: Callable[[], Awaitable[Reply | None]], deliver: Deliver) -> None:
        async def run() -> None:
            try:
                reply = await work()
                self.metrics.commands.labels(job, "ok").inc()
            except FirebreakError as exc:
                reply = warning(str(exc))
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

    # ---- /incident --------------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            await self._on_command(ack, body)
        except Exception:
            # Before the ack only our own store can fail; Slack would show a bare "failed with error 500".
            log.exception("slash command failed before its ack")
            await ack(response_type="ephemeral", text=STORE_DOWN)

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        config = self.service.config
        text = (body.get("text") or "").strip()
        user, channel_id, trigger_id = body["user_id"], body.get("channel_id", ""), body.get("trigger_id")
        name, _, rest = text.partition(" ")
        sub = self.registry.get(name or "help")
        if sub is None:
            await ack(
                response_type="ephemeral",
                text=f"I don't know `{name}`. Here's what I can do:\n{self.registry.usage(config)}",
            )
            return
        try:
            ref = None
            if sub.needs_incident:
                first, _, after = rest.strip().partition(" ")
                if first and (ref := parse_incident_ref(first)) is not None:
                    rest = after
            args = sub.parse(rest, config)
            incident = await self.service.find(ref, channel_id) if sub.needs_incident else None
        except FirebreakError as exc:
            await ack(response_type="ephemeral", text=f":warning: {exc}\nUsage: `{render_usage(sub, config)}`")
            return
        if trigger_id and not await self.once(ClaimKind.SLACK_TRIGGER, trigger_id):
            await ack()
            return
        ack_text = sub.ack_text(args)
        await ack(response_type="ephemeral", text=ack_text) if ack_text else await ack()
        ctx = CommandContext(self.service, self.client, self.registry, user, channel_id, trigger_id, incident)
        deliver = ephemeral(self.client, body.get("response_url"), channel_id, user)
        self.after_ack(sub.name, lambda: sub.run(ctx, args), deliver)

    # ---- buttons, forms and events, one listener each from the registry ----------------------------

    def action_listener(self, action: Action) -> Listener:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            user = body["user"]["id"]
            channel_id = (body.get("channel") or {}).get("id", "")
            ctx = InteractionContext(self.service, self.client, user, channel_id)
            clicked = body["actions"][0]
            deliver = ephemeral(self.client, body.get("response_url"), channel_id, user)
            self.after_ack(action.name, lambda: action.run(ctx, clicked), deliver)

        return listener

    def view_listener(self, view: ViewSubmission) -> Listener:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            submitted = body["view"]
            form, errors = view.read(submitted, self.service.config)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
            await ack()
            if not await self.once(ClaimKind.SLACK_VIEW, submitted["id"]):
                return
            user = body["user"]["id"]
            reply_to = submitted.get("private_metadata") or user
            ctx = InteractionContext(self.service, self.client, user, reply_to)
            self.after_ack(view.name, lambda: view.run(ctx, form), ephemeral(self.client, None, reply_to, user))

        return listener

    def event_listener(self, listener_of: EventListener) -> Listener:
        async def listener(body: dict[str, Any], event: dict[str, Any]) -> None:
            if not listener_of.accepts(event):
                return
            if not await self.once(ClaimKind.SLACK_EVENT, str(body.get("event_id"))):
                return
            item = event.get("item") or {}
            channel_id = event.get("channel_id") or item.get("channel") or event.get("channel") or ""
            ctx = InteractionContext(self.service, self.client, event.get("user"), channel_id)
            deliver = ephemeral_only(self.client, channel_id, ctx.user)
            self.after_ack(listener_of.name, lambda: listener_of.run(ctx, event), deliver)

        return listener


def build_bolt_app(
    *,
    service: IncidentService,
    claims: Claims,
    client: AsyncWebClient,
    jobs: Jobs,
    metrics: Metrics,
    registry: Registry | None = None,
) -> AsyncApp:
    """The bolt app; ack-before-work is ours (process_before_response) so acks never wait on Slack.

    Signatures are checked before bolt sees a request (handlers.web), on the raw bytes, so bolt's own
    check is off; Socket Mode needs none.
    """
    quiet_token_warning()
    app = AsyncApp(
        client=client,
        signing_secret="",
        request_verification_enabled=False,
        process_before_response=True,
    )
    registry = registry or default_registry()
    h = SlackHandlers(service, claims, client, jobs, metrics, registry)
    app.command(service.config.command)(h.on_command)
    for action in registry.actions:
        app.action(action.action_id)(h.action_listener(action))
    for view in registry.views:
        app.view(view.callback_id)(h.view_listener(view))
    for event in registry.events:
        app.event(event.event_type)(h.event_listener(event))
    return app
