"""Running Slack's requests after the ack, as durable jobs: any replica, after any crash, from the job alone.

A job holds what the request said (the subcommand and its text, the clicked button, the submitted form,
the event); the runner parses it again, calls the registered function with the job's Op, and delivers the
reply. User errors are replies; transient failures (Slack or Redis unreachable) run the job again later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ChatError, FirebreakError
from bot.core.jobs import Job, Op, TryLater
from bot.core.metrics import Metrics
from bot.core.service import IncidentService
from bot.render.replies import Reply, warning
from handlers.delivery import Deliver, ephemeral, ephemeral_only
from handlers.registry import CommandContext, InteractionContext, Registry

log = logging.getLogger(__name__)

SLACK_JOB = "slack"
TRANSIENT_SLACK_ERRORS = frozenset(
    {"unreachable", "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def internal_error(name: str) -> Reply:
    return Reply(
        f":x: firebreak hit an internal error while running `{name}`. The incident record is safe; "
        "try again, and if it repeats ask your firebreak admin to check the bot's logs."
    )


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
        kind = p["type"]
        if kind == "command":
            name, work, deliver = self._command(p, op)
        elif kind == "action":
            name, work, deliver = self._action(p, op)
        elif kind == "view":
            name, work, deliver = self._view(p, op)
        else:
            name, work, deliver = self._event(p, op)
        reply = await self._outcome(name, work)
        if reply is not None:
            try:
                await deliver(reply)
            except Exception:
                log.exception("could not deliver the reply to %s", name)

    async def _outcome(self, name: str, work: Callable[[], Awaitable[Reply | None]]) -> Reply | None:
        try:
            reply = await work()
        except ChatError as exc:
            if exc.code in TRANSIENT_SLACK_ERRORS:
                raise TryLater(str(exc)) from exc
            self.metrics.commands.labels(name, "user_error").inc()
            return warning(str(exc))
        except FirebreakError as exc:
            self.metrics.commands.labels(name, "user_error").inc()
            return warning(str(exc))
        except self.transient:
            raise  # the store is unreachable: run again once it answers, from where this attempt got to
        except Exception:
            log.exception("%s failed after ack", name)
            self.metrics.commands.labels(name, "failed").inc()
            return internal_error(name)
        self.metrics.commands.labels(name, "ok").inc()
        return reply

    def _command(self, p: dict[str, Any], op: Op) -> tuple[str, Callable[[], Awaitable[Reply | None]], Deliver]:
        sub = self.registry.get(p["name"])
        assert sub is not None, f"subcommand {p['name']!r} is not registered"
        deliver = ephemeral(self.client, p.get("response_url"), p["channel"], p["user"])

        async def work() -> Reply | None:
            args = sub.parse(p["rest"], self.service.config)
            incident = await self.service.get(p["incident_id"]) if p.get("incident_id") is not None else None
            ctx = CommandContext(
                self.service, self.client, self.registry, p["user"], p["channel"], p.get("trigger_id"), incident, op
            )
            return await sub.run(ctx, args)

        return sub.name, work, deliver

    def _action(self, p: dict[str, Any], op: Op) -> tuple[str, Callable[[], Awaitable[Reply | None]], Deliver]:
        action = next(a for a in self.registry.actions if a.action_id == p["action_id"])
        ctx = InteractionContext(self.service, self.client, p["user"], p["channel"], op)
        deliver = ephemeral(self.client, p.get("response_url"), p["channel"], p["user"])
        return action.name, lambda: action.run(ctx, p["action"]), deliver

    def _view(self, p: dict[str, Any], op: Op) -> tuple[str, Callable[[], Awaitable[Reply | None]], Deliver]:
        view = next(v for v in self.registry.views if v.callback_id == p["callback_id"])
        form, _ = view.read(p["view"], self.service.config)
        reply_to = p["view"].get("private_metadata") or p["user"]
        ctx = InteractionContext(self.service, self.client, p["user"], reply_to, op)
        return view.name, lambda: view.run(ctx, form), ephemeral(self.client, None, reply_to, p["user"])

    def _event(self, p: dict[str, Any], op: Op) -> tuple[str, Callable[[], Awaitable[Reply | None]], Deliver]:
        listener = next(e for e in self.registry.events if e.event_type == p["event_type"])
        event = p["event"]
        item = event.get("item") or {}
        channel_id = event.get("channel_id") or item.get("channel") or event.get("channel") or ""
        ctx = InteractionContext(self.service, self.client, event.get("user"), channel_id, op)
        return listener.name, lambda: listener.run(ctx, event), ephemeral_only(self.client, channel_id, ctx.user)
