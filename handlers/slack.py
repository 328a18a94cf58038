"""The bolt app, built by looping over the registry. Every listener checks the request, records it as a durable
job, and acks; the job runs after the ack on any replica (handlers.runner)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import FirebreakError
from bot.core.jobs import Job, NotSent, TooLate
from bot.core.ports import JobQueue
from bot.core.service import IncidentService
from handlers import buttons, changes, commands, evidence, forms, guide, mitigate, pins, reminders, triage
from handlers.parsing import parse_incident_ref
from handlers.registry import Action, EventListener, Registry, ViewSubmission, render_usage
from handlers.runner import SLACK_JOB

log = logging.getLogger(__name__)
MODULES = (commands, buttons, forms, pins, mitigate, reminders, triage, evidence, changes, guide)
"""Every handler module; the registry is built from exactly these."""
RECORD_WITHIN_SECONDS = 1.5
"""Lookups and the job record must land within this of the request's arrival. Past it the store itself
refuses the record (by its own clock), so a request that was slow, frozen or retried in Redis can never be
recorded after the user was told that nothing was done. Slack gives up on an ack after 3 s."""
VERIFY_SECONDS = 0.4
RECENT_ANSWER_SECONDS = 0.1
"""A store that answered this recently is taken to be there; otherwise it is pinged before a record."""
"""When recording failed midway, one look after the deadline tells whether it landed."""
STORE_DOWN = (
    ":x: firebreak can't reach its database right now, so nothing was done. "
    "Try again in a moment; if it persists, tell your firebreak admin (`/readyz` shows why)."
)
INTERNAL_BEFORE_ACK = (
    ":x: firebreak hit an internal error reading this command, so nothing was done. "
    "If it repeats, ask your firebreak admin to check the bot's logs."
)
STORE_UNSURE = (
    ":warning: firebreak lost its database while recording this, and can't tell yet whether it was recorded. "
    "Check in a minute (`/incident status`, or the incident channel) before repeating it."
)


class NotRecorded(Exception):
    """Certainly not recorded, and never will be."""


class MaybeRecorded(Exception):
    """The store went away midway: it may or may not have been recorded."""


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


@dataclass(frozen=True)
class Arrival:
    deadline: float
    """On the event loop's clock: when lookups and the record must be done."""
    valid_until: datetime
    """The same moment by the wall clock, which the store compares with its own."""

    @classmethod
    def now(cls) -> Arrival:
        return cls(
            asyncio.get_running_loop().time() + RECORD_WITHIN_SECONDS,
            datetime.now(UTC) + timedelta(seconds=RECORD_WITHIN_SECONDS),
        )


class SlackListeners:
    """What runs before the ack: check the request, record it as a job, ack. Nothing here calls Slack."""

    def __init__(
        self,
        service: IncidentService,
        queue: JobQueue,
        registry: Registry,
        wake: Callable[[], None],
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.service = service
        self.queue = queue
        self.registry = registry
        self.wake = wake
        self.store_away: tuple[type[BaseException], ...] = (TimeoutError, *transient)
        self.store_down: tuple[type[BaseException], ...] = (NotRecorded, *self.store_away)
        self._answered_at = float("-inf")

    async def record(self, job_id: str, payload: dict[str, Any], arrived: Arrival, *, answered: bool = False) -> bool:
        """Record the request as a job before the ack; False when it was recorded before (a retry, a double
        submit): the first delivery wins and the rest are acknowledged and dropped.

        Raises NotRecorded when it certainly wasn't (and can't be later), MaybeRecorded when nobody can tell.
        Unless the store answered for this request already (a lookup) or a moment ago, it is asked first
        whether it is there at all: a store that is down or frozen then means that nothing was done, rather
        than "can't tell". Under load the store answers all the time, so the extra round trip is skipped.
        """
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        job = Job(id=job_id, kind=SLACK_JOB, payload=payload, created_at=now)
        if not answered and loop.time() - self._answered_at > RECENT_ANSWER_SECONDS:
            try:
                async with asyncio.timeout_at(arrived.deadline):
                    await self.queue.ping()
            except Exception as exc:
                raise NotRecorded(f"the store did not answer: {type(exc).__name__}") from exc
        try:
            async with asyncio.timeout_at(arrived.deadline):
                new = await self.queue.enqueue(job, now, valid_until=arrived.valid_until)
            self._answered_at = loop.time()
        except (TooLate, NotSent) as exc:
            raise NotRecorded(str(exc)) from exc
        except self.store_away:
            # The record may have reached Redis. Once its deadline passed it can't land any more: look once.
            await asyncio.sleep(max(0.0, (arrived.valid_until - datetime.now(UTC)).total_seconds()) + 0.05)
            try:
                async with asyncio.timeout(VERIFY_SECONDS):
                    new = await self.queue.exists(job_id)
            except Exception:
                raise MaybeRecorded from None
            if not new:
                raise NotRecorded("not recorded by its deadline") from None
        if new:
            self.wake()
        return new

    # ---- /incident --------------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            reply = await self._command(body, Arrival.now())
        except MaybeRecorded:
            log.warning("slash command: the store went away while recording it; it may have been recorded")
            reply = STORE_UNSURE
        except self.store_down as exc:
            log.warning("slash command not recorded, the store is unavailable: %s", exc)
            reply = STORE_DOWN
        except Exception:
            log.exception("slash command failed before its ack")
            reply = INTERNAL_BEFORE_ACK
        await ack(response_type="ephemeral", text=reply) if reply else await ack()

    async def _command(self, body: dict[str, Any], arrived: Arrival) -> str | None:
        """The ack's text (None for a silent ack); raises when the store can't record the job."""
        config = self.service.config
        text = (body.get("text") or "").strip()
        user, channel_id = body["user_id"], body.get("channel_id", "")
        name, _, rest = text.partition(" ")
        sub = self.registry.get(name or "help")
        if sub is None:
            return f"I don't know `{name}`. Here's what I can do:\n{self.registry.usage(config)}"
        try:
            ref = None
            if sub.needs_incident:
                first, _, after = rest.strip().partition(" ")
                if first and (ref := parse_incident_ref(first)) is not None:
                    rest = after
            args = sub.parse(rest, config)
            async with asyncio.timeout_at(arrived.deadline):
                incident = await self.service.find(ref, channel_id) if sub.needs_incident else None
        except FirebreakError as exc:
            return f":warning: {exc}\nUsage: `{render_usage(sub, config)}`"
        payload = {
            "type": "command",
            "name": sub.name,
            "rest": rest,
            "user": user,
            "channel": channel_id,
            "trigger_id": body.get("trigger_id"),
            "response_url": body.get("response_url"),
            "incident_id": incident.id if incident else None,
        }
        job_id = f"slack-command:{body.get('trigger_id') or uuid.uuid4().hex}"
        if not await self.record(job_id, payload, arrived, answered=sub.needs_incident):
            return None
        return sub.ack_text(args)

    # ---- buttons, forms and events, one listener each from the registry ----------------------------

    def action_listener(self, action: Action) -> Listener:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            payload = {
                "type": "action",
                "action_id": action.action_id,
                "action": {
                    **body["actions"][0],
                    "trigger_id": body.get("trigger_id"),
                    "message_ts": (body.get("message") or {}).get("ts")
                    or (body.get("container") or {}).get("message_ts"),
                },
                "user": body["user"]["id"],
                "channel": (body.get("channel") or {}).get("id", ""),
                "response_url": body.get("response_url"),
            }
            ident = body.get("trigger_id") or body["actions"][0].get("action_ts") or uuid.uuid4().hex
            await self._recorded(ack, f"slack-action:{ident}", payload)

        return listener

    def view_listener(self, view: ViewSubmission) -> Listener:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            submitted = body["view"]
            _, errors = view.read(submitted, self.service)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
            payload = {"type": "view", "callback_id": view.callback_id, "view": submitted, "user": body["user"]["id"]}
            await self._recorded(ack, f"slack-view:{submitted['id']}", payload)

        return listener

    def event_listener(self, listener_of: EventListener) -> Listener:
        async def listener(ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
            if not listener_of.accepts(event):
                await ack()
                return
            payload = {"type": "event", "event_type": listener_of.event_type, "event": event}
            await self._recorded(ack, f"slack-event:{body.get('event_id') or uuid.uuid4().hex}", payload)

        return listener

    async def _recorded(self, ack: AsyncAck, job_id: str, payload: dict[str, Any]) -> None:
        """Record, then ack. If the store can't record it, don't ack: Slack shows the user an error (and
        retries events, which the job id then deduplicates) instead of a success that would be lost."""
        try:
            await self.record(job_id, payload, Arrival.now())
        except Exception:
            log.warning("%s could not be recorded before its ack; not acknowledged", job_id, exc_info=True)
            return
        await ack()


def build_bolt_app(
    *,
    service: IncidentService,
    queue: JobQueue,
    client: AsyncWebClient,
    wake: Callable[[], None],
    registry: Registry | None = None,
    transient: tuple[type[BaseException], ...] = (),
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
    h = SlackListeners(service, queue, registry, wake, transient)
    app.command(service.config.command)(h.on_command)
    for action in registry.actions:
        app.action(action.action_id)(h.action_listener(action))
    for view in registry.views:
        app.view(view.callback_id)(h.view_listener(view))
    for event in registry.events:
        app.event(event.event_type)(h.event_listener(event))
    return app
