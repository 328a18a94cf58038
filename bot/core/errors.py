"""Errors that carry a message meant for the person who typed the command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FirebreakError(Exception):
    """Base: str(exc) is safe and useful to show a user."""


class ConfigError(FirebreakError):
    """Settings or the YAML config are wrong; the process should not start."""


class UsageError(FirebreakError):
    """The command was malformed; the message says how to write it."""


class NotFound(FirebreakError):
    """The incident (or channel) named does not exist."""


class InvalidTransition(FirebreakError):
    """The incident is not in a state that allows this (e.g. resolving a resolved incident)."""


class ChatError(FirebreakError):
    """A chat platform call failed; `code` is the platform's error code (e.g. Slack's not_in_channel)."""

    TRANSIENT = frozenset(
        {"unreachable", "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
    )
    """Codes that say "not now" rather than "no": the work is retried until the platform answers."""

    def __init__(self, message: str, *, code: str, method: str) -> None:
        super().__init__(message)
        self.code = code
        self.method = method

    @property
    def transient(self) -> bool:
        return self.code in self.TRANSIENT


class ChannelNameTaken(ChatError):
    """The channel name exists already; the caller picks another."""


class Conflict(FirebreakError):
    """Optimistic concurrency lost a race; the caller reloads and retries."""


class AlreadyApplied(FirebreakError):
    """This op was applied before (a repeat after a crash or a lost reply); `events` are what it saved then."""

    def __init__(self, events: Sequence[Any]) -> None:
        super().__init__("already applied")
        self.events = list(events)


class Busy(FirebreakError):
    """Another request holds the work this one needs (provisioning the same incident); nothing was waited for."""


class ClusterError(FirebreakError):
    """The Kubernetes API refused or failed; `status` is its HTTP status (409, 404, 429 ...)."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def unanswered(self) -> bool:
        """Sent, but no answer came (a timeout, a dropped connection): a write may or may not have landed."""
        return self.reason == "NoAnswer"


class MetricsError(FirebreakError):
    """A metrics query failed; the message names the query and why (also apart: `query`, `reason`)."""

    def __init__(self, message: str, *, query: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.query = query
        self.reason = reason or message


class ChartError(FirebreakError):
    """Drawing a chart failed or took too long; the message says which (the panel is posted without it)."""
