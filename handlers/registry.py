"""One registry for everything Slack sends: subcommands, button actions, view submissions and events.

Each handler module holds a `handlers = HandlerTable()` and registers onto it with decorators, so a new
subcommand, button, form or event is one decorated function. The registry is built from an explicit list
of modules (handlers.slack.MODULES); tests may build their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.config import IncidentConfig
from bot.core.jobs import Op
from bot.core.service import IncidentService
from bot.models import FIREBREAK, Actor, Incident
from bot.render.blocks import numbered_ids
from bot.render.replies import Reply


@dataclass(frozen=True)
class CommandContext:
    service: IncidentService
    client: AsyncWebClient
    registry: Registry
    user: str
    channel_id: str
    trigger_id: str | None
    incident: Incident | None
    op: Op
    """This request's operation: pass it to the core so a resumed job repeats nothing."""

    @property
    def config(self) -> IncidentConfig:
        return self.service.config

    @property
    def actor(self) -> Actor:
        return Actor.user(self.user)

    @property
    def target(self) -> Incident:
        assert self.incident is not None, "subcommand registered with needs_incident=False"
        return self.incident


@dataclass(frozen=True)
class InteractionContext:
    """A click, a form submission or an event: who, where, and the collaborators to act with."""

    service: IncidentService
    client: AsyncWebClient
    user: str | None
    channel_id: str
    op: Op

    @property
    def config(self) -> IncidentConfig:
        return self.service.config

    @property
    def actor(self) -> Actor:
        """Whoever acted; an event Slack sends without a user is firebreak's to record."""
        return Actor.user(self.user) if self.user else FIREBREAK


T = TypeVar("T")
Parser = Callable[[str, IncidentConfig], Any]
Runner = Callable[[CommandContext, Any], Awaitable[Reply | None]]
ActionRunner = Callable[[InteractionContext, dict[str, Any]], Awaitable[Reply | None]]
ViewReader = Callable[[dict[str, Any], IncidentService], tuple[Any, dict[str, str]]]
ViewRunner = Callable[[InteractionContext, Any], Awaitable[Reply | None]]
EventRunner = Callable[[InteractionContext, dict[str, Any]], Awaitable[Reply | None]]


def rest_text(rest: str, config: IncidentConfig) -> str:
    return rest


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    """May name {sevs} (sev1|sev2|...), {max} (highest level) and {roles} (ic|comms|...), filled from the config."""
    summary: str
    run: Runner
    parse: Parser
    needs_incident: bool
    ack_text: Callable[[Any], str | None]


@dataclass(frozen=True)
class Action:
    """A button (block_actions) by its action_id; runs after the ack with the clicked action."""

    action_id: str
    name: str
    run: ActionRunner


@dataclass(frozen=True)
class ViewSubmission:
    """A modal's submission by its callback_id: `read` runs before the ack (its errors show in the form)."""

    callback_id: str
    name: str
    read: ViewReader
    run: ViewRunner


@dataclass(frozen=True)
class EventListener:
    """An Events API event by its type; `accepts` filters cheaply before any work is queued."""

    event_type: str
    name: str
    run: EventRunner
    accepts: Callable[[dict[str, Any]], bool]


@dataclass
class HandlerTable:
    """What one handler module registers; merged into a Registry."""

    subcommands: list[Subcommand] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    views: list[ViewSubmission] = field(default_factory=list)
    events: list[EventListener] = field(default_factory=list)

    def subcommand(
        self,
        name: str,
        *,
        usage: str,
        summary: str,
        parse: Parser = rest_text,
        needs_incident: bool = True,
        ack_text: Callable[[Any], str | None] = lambda _: None,
    ) -> Callable[[Runner], Runner]:
        def register(run: Runner) -> Runner:
            self.subcommands.append(Subcommand(name, usage, summary, run, parse, needs_incident, ack_text))
            return run

        return register

    def action(self, action_id: str, *, numbered: int = 0) -> Callable[[ActionRunner], ActionRunner]:
        """`numbered`: the handler also answers that many numbered ids (render.blocks.numbered), for a block
        holding several of its buttons."""
        ids = numbered_ids(action_id, numbered) if numbered else (action_id,)

        def register(run: ActionRunner) -> ActionRunner:
            self.actions.extend(Action(i, run.__name__, run) for i in ids)
            return run

        return register

    def view(self, callback_id: str, *, read: ViewReader) -> Callable[[ViewRunner], ViewRunner]:
        def register(run: ViewRunner) -> ViewRunner:
            self.views.append(ViewSubmission(callback_id, run.__name__, read, run))
            return run

        return register

    def event(
        self, event_type: str, *, accepts: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> Callable[[EventRunner], EventRunner]:
        def register(run: EventRunner) -> EventRunner:
            self.events.append(EventListener(event_type, run.__name__, run, accepts))
            return run

        return register


class Registry:
    """Everything registered, by what Slack routes on. Built from modules; a name registered twice is an error."""

    def __init__(self, tables: Iterable[HandlerTable] = ()) -> None:
        self._subcommands: dict[str, Subcommand] = {}
        self._actions: dict[str, Action] = {}
        self._views: dict[str, ViewSubmission] = {}
        self._events: dict[str, EventListener] = {}
        for table in tables:
            self.add(table)

    @classmethod
    def from_modules(cls, modules: Iterable[ModuleType]) -> Registry:
        return cls(module.handlers for module in modules)

    def add(self, table: HandlerTable) -> None:
        _merge(self._subcommands, {s.name: s for s in table.subcommands}, "subcommand")
        _merge(self._actions, {a.action_id: a for a in table.actions}, "action")
        _merge(self._views, {v.callback_id: v for v in table.views}, "view")
        _merge(self._events, {e.event_type: e for e in table.events}, "event")

    def get(self, name: str) -> Subcommand | None:
        return self._subcommands.get(name.lower())

    def __iter__(self) -> Iterator[Subcommand]:
        return iter(self._subcommands.values())

    @property
    def actions(self) -> list[Action]:
        return list(self._actions.values())

    @property
    def views(self) -> list[ViewSubmission]:
        return list(self._views.values())

    @property
    def events(self) -> list[EventListener]:
        return list(self._events.values())

    def usage(self, config: IncidentConfig) -> str:
        return "\n".join(f"`{render_usage(s, config)}` {s.summary}" for s in self)


def _merge(into: dict[str, T], new: dict[str, T], what: str) -> None:
    for ident, item in new.items():
        if ident in into:
            raise ValueError(f"{what} {ident!r} registered twice")
        into[ident] = item


def render_usage(sub: Subcommand, config: IncidentConfig) -> str:
    """The usage line as this team configured things: its command, severities and roles."""
    usage = sub.usage.format(
        sevs="|".join(s.name for s in config.severities), max=config.max_level, roles="|".join(config.roles)
    )
    return f"{config.command} {usage}"
