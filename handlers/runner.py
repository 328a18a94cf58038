"""Running Slack's requests after the ack, as durable jobs: any replica, after any crash, from the job alone.

A job holds what the request said (the subcommand and its text, the clicked button, the submitted form,
the event); the runner parses it again, calls the registered function with the job's Op, and delivers the
reply. User errors are replies; transient failures (Slack or Redis away) run the job again later, and the
person is told once when that takes a while.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ChatError, FirebreakError
from bot.core.jobs import Job, LeaseLost, Op, TryLater
from bot.core.metrics import Metrics
from bot.core.service import IncidentService
from bot.render.replies import Reply, internal_error, still_trying, warning
from handlers.delivery import Deliver, ephemeral, ephemeral_only
from handlers.registry import CommandContext, InteractionContext, Registry

log = logging.getLogger(__name__)

SLACK_JOB = "slack"
STILL_TRYING_AFTER = 3
"""After this many attempts failed for a transient reason, the person hears that firebreak keeps trying."""

Work = Callable[[], Awaitable[Reply | None]]


class Gone(FirebreakError):
    """The job names a subcommand, button, form or event this version no longer has."""


class SlackJobs:
    def __init__(
        self,
        service: IncidentService,
        client: AsyncWebClient,
        registry: Registry,
        metrics: Metrics,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.service = service
        self.client = client
        self.registry = registry
        self.metrics = metrics
        self.transient = transient

    async def run(self, job: Job, op: Op) -> None:
        p = job.payload
        name = str(p.get("name") or p.get("action_id") or p.get("callback_id") or p.get("event_type"))
        deliver = self._deliver(p)
        try:
            name, work = self._prepare(p, op)
            reply = await self._outcome(name, work, deliver, job.attempts)
        except (TryLater, LeaseLost):
            raise
        except self.transient:
            raise
        except Gone as exc:
            log.error("job %s can't run: %s", job.id, exc)
            reply = warning(str(exc))
        if reply is not None:
            op.check()  # a worker that lost the job doesn't answer for it: the holder does
            try:
                await deliver(reply)
            except Exception:
                log.exception("could not deliver the reply to %s", name)

    def _deliver(self, p: dict[str, Any]) -> Deliver:
        """Where the reply goes: the response_url (or an ephemeral message, or a DM) of whoever asked."""
        kind = p["type"]
        if kind == "view":
            reply_to = p["view"].get("private_metadata") or p["user"]
            return ephemeral(self.client, None, reply_to, p["user"])
        if kind == "event":
            event = p["event"]
            return ephemeral_only(self.client, _event_channel(event), event.get("user"))
        return ephemeral(self.client, p.get("response_url"), p["channel"], p["user"])

    def _prepare(self, p: dict[str, Any], op: Op) -> tuple[str, Work]:
        kind = p["type"]
        if kind == "command":
            return self._command(p, op)
        if kind == "action":
            return self._action(p, op)
        if kind == "view":
            return self._view(p, op)
        return self._event(p, op)

    async def _outcome(self, name: str, work: Work, deliver: Deliver, attempts: int) -> Reply | None:
        try:
            reply = await work()
        except ChatError as exc:
            if exc.transient:
                if attempts == STILL_TRYING_AFTER:
                    await self._tell(deliver, still_trying(name, str(exc)))
                raise TryLater(str(exc)) from exc
            self.metrics.commands.labels(name, "user_error").inc()
            return warning(str(exc))
        except FirebreakError as exc:
            self.metrics.commands.labels(name, "user_error").inc()
            return warning(str(exc))
        except LeaseLost:
            raise  # another worker has the job now; it replies
        except self.transient:
            raise  # the store is unreachable: run again once it answers, from where this attempt got to
        except Exception:
            log.exception("%s failed after ack", name)
            self.metrics.commands.labels(name, "failed").inc()
            return internal_error(name)
        self.metrics.commands.labels(name, "ok").inc()
        return reply

    @staticmethod
    async def _tell(deliver: Deliver, reply: Reply) -> None:
        try:
            await deliver(reply)
        except Exception:
            log.warning("could not tell the user that firebreak keeps trying", exc_info=True)

    def _command(self, p: dict[str, Any], op: Op) -> tuple[str, Work]:
        sub = self.registry.get(p["name"])
        if sub is None:
            raise Gone(f"`{p['name']}` is not a subcommand any more (firebreak was updated); nothing was done.")

        async def work() -> Reply | None:
            args = sub.parse(p["rest"], self.service.config)
            incident = await self.service.get(p["incident_id"]) if p.get("incident_id") is not None else None
            ctx = CommandContext(
                self.service, self.client, self.registry, p["user"], p["channel"], p.get("trigger_id"), incident, op
            )
            return await sub.run(ctx, args)

        return sub.name, work

    def _action(self, p: dict[str, Any], op: Op) -> tuple[str, Work]:
        action = next((a for a in self.registry.actions if a.action_id == p["action_id"]), None)
        if action is None:
            raise Gone("That button belongs to an older firebreak; nothing was done.")
        ctx = InteractionContext(self.service, self.client, p["user"], p["channel"], op)
        return action.name, lambda: action.run(ctx, p["action"])

    def _view(self, p: dict[str, Any], op: Op) -> tuple[str, Work]:
        view = next((v for v in self.registry.views if v.callback_id == p["callback_id"]), None)
        if view is None:
            raise Gone("That form belongs to an older firebreak; nothing was done.")
        form, _ = view.read(p["view"], self.service)
        reply_to = p["view"].get("private_metadata") or p["user"]
        ctx = InteractionContext(self.service, self.client, p["user"], reply_to, op)
        return view.name, lambda: view.run(ctx, form)

    def _event(self, p: dict[str, Any], op: Op) -> tuple[str, Work]:
        listener = next((e for e in self.registry.events if e.event_type == p["event_type"]), None)
        if listener is None:
            raise Gone(f"firebreak no longer handles {p['event_type']} events")
        event = p["event"]
        ctx = InteractionContext(self.service, self.client, event.get("user"), _event_channel(event), op)
        return listener.name, lambda: listener.run(ctx, event)


def _event_channel(event: dict[str, Any]) -> str:
    item = event.get("item") or {}
    return str(event.get("channel_id") or item.get("channel") or event.get("channel") or "")
