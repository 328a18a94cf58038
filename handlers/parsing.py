"""Parsing subcommand arguments before the ack, so a usage error answers at once and nothing is queued."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.config import IncidentConfig
from bot.core.errors import UsageError
from bot.core.refs import looks_like_severity, parse_severity, parse_user
from bot.models import IC, Status

_NEXT = re.compile(r"\s+next\s+(?P<n>\d+)\s*(?:m|min|mins|minutes?)?\s*$", re.IGNORECASE)
_STATUS_PREFIX = re.compile(r"^(?P<s>[a-z]+):\s*", re.IGNORECASE)
MAX_NEXT_MINUTES = 24 * 60


@dataclass(frozen=True)
class DeclareArgs:
    title: str
    severity: int | None


@dataclass(frozen=True)
class UpdateArgs:
    text: str
    status: Status | None
    next_minutes: int | None


def no_args(rest: str, config: IncidentConfig) -> None:
    if rest.strip():
        raise UsageError(f"This subcommand takes no arguments (got {rest.strip()!r}).")


def required(what: str) -> Callable[[str, IncidentConfig], str]:
    def parse(rest: str, config: IncidentConfig) -> str:
        if not rest.strip():
            raise UsageError(f"Missing {what}.")
        return rest.strip()

    return parse


def parse_declare(rest: str, config: IncidentConfig) -> DeclareArgs | None:
    rest = rest.strip()
    if not rest:
        return None  # no arguments: the modal asks for them
    first, _, title = rest.partition(" ")
    severity = None
    if looks_like_severity(first):
        severity = parse_severity(first, config.max_level)
    else:
        title = rest
    if not title.strip():
        raise UsageError("Missing the title after the severity.")
    return DeclareArgs(title=title.strip(), severity=severity)


def parse_update(rest: str, config: IncidentConfig) -> UpdateArgs:
    text, next_minutes = rest.strip(), None
    if m := _NEXT.search(" " + text):
        next_minutes = int(m["n"])
        if not 1 <= next_minutes <= MAX_NEXT_MINUTES:
            raise UsageError(f"`next` takes minutes from 1 to {MAX_NEXT_MINUTES}.")
        text = (" " + text)[: m.start()].strip()
    status = None
    if (m := _STATUS_PREFIX.match(text)) and m["s"].lower() in Status.__members__.values():
        status = Status(m["s"].lower())
        if status is Status.RESOLVED:
            raise UsageError("To resolve, use `resolve [summary]`.")
        text = text[m.end() :]
    if not text:
        raise UsageError("Say what changed, e.g. `update rolled back api to v41, error rate falling next 15`.")
    return UpdateArgs(text=text, status=status, next_minutes=next_minutes)


def parse_ic(rest: str, config: IncidentConfig) -> str | None:
    tokens = rest.split()
    if len(tokens) > 1:
        raise UsageError("Name one person.")
    return parse_user(tokens[0]) if tokens else None


def parse_role(rest: str, config: IncidentConfig) -> tuple[str, str]:
    tokens = rest.split()
    if len(tokens) != 2:
        raise UsageError("Name a role and one person.")
    role = tokens[0].lower()
    if role not in (IC, *config.roles):
        raise UsageError(f"Unknown role {tokens[0]!r}: roles are {', '.join((IC, *config.roles))}.")
    return role, parse_user(tokens[1])


def parse_sev(rest: str, config: IncidentConfig) -> int:
    tokens = rest.split()
    if len(tokens) != 1:
        raise UsageError("Give one severity.")
    return parse_severity(tokens[0], config.max_level)
