"""Subcommands of the slash command: each is one decorated function registered on a Registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import IncidentConfig
from bot.models import Incident
from bot.service import IncidentService


@dataclass(frozen=True)
class Reply:
    """What the person who ran the command sees (ephemeral)."""

    text: str
    blocks: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class CommandContext:
    service: IncidentService
    client: AsyncWebClient
    user: str
    channel_id: str
    trigger_id: str | None
    incident: Incident | None

    @property
    def config(self) -> IncidentConfig:
        return self.service.config

    @property
    def target(self) -> Incident:
        assert self.incident is not None, "subcommand registered with needs_incident=False"
        return self.incident


Parser = Callable[[str, IncidentConfig], Any]
Runner = Callable[[CommandContext, Any], Awaitable[Reply | None]]


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


class Registry:
    """Subcommands by name. Tests and embedders can build their own registry and hand it to the app."""

    def __init__(self) -> None:
        self._subcommands: dict[str, Subcommand] = {}

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
            if name in self._subcommands:
                raise ValueError(f"subcommand {name!r} registered twice")
            self._subcommands[name] = Subcommand(name, usage, summary, run, parse, needs_incident, ack_text)
            return run

        return register

    def get(self, name: str) -> Subcommand | None:
        return self._subcommands.get(name.lower())

    def __iter__(self) -> Iterator[Subcommand]:
        return iter(self._subcommands.values())

    def usage(self, config: IncidentConfig) -> str:
        return "\n".join(f"`{render_usage(s, config)}` {s.summary}" for s in self)


def render_usage(sub: Subcommand, config: IncidentConfig) -> str:
    """The usage line as this team configured things: its command, severities and roles."""
    usage = sub.usage.format(
        sevs="|".join(s.name for s in config.severities), max=config.max_level, roles="|".join(config.roles)
    )
    return f"{config.command} {usage}"
