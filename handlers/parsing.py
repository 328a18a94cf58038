"""Parsing subcommand arguments before the ack, so a usage error answers at once and nothing is queued."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.changing import check_update_status
from bot.core.config import IncidentConfig
from bot.core.declaring import check_title
from bot.core.errors import UsageError
from bot.core.refs import IncidentRef
from bot.models import Status
from bot.render.mrkdwn import unescape

_CHANNEL_MENTION = re.compile(r"<#(?P<id>[CG][A-Z0-9]+)(?:\|(?P<name>[^>]*))?>")
_USER_MENTION = re.compile(r"<@(?P<id>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
_INC_ID = re.compile(r"inc-(?P<n>\d{1,7})", re.IGNORECASE)
_NEXT_ANY = re.compile(r"(?:^|\s)next\s+(?P<n>\S+)\s*(?:m|min|mins|minutes?)?\s*$", re.IGNORECASE)
_NEXT = re.compile(r"\s+next\s+(?P<n>\d+)\s*(?:m|min|mins|minutes?)?\s*$", re.IGNORECASE)
_STATUS_PREFIX = re.compile(r"^(?P<s>[a-z]+):\s*", re.IGNORECASE)
MAX_NEXT_MINUTES = 24 * 60


def parse_incident_ref(token: str) -> IncidentRef | None:
    """`INC-7`, `<#C123|inc-...>` or `#inc-...`; None when the token is not a reference."""
    if m := _CHANNEL_MENTION.fullmatch(token):
        return IncidentRef(channel_id=m["id"], channel_name=m["name"] or None)
    if m := _INC_ID.fullmatch(token):
        return IncidentRef(incident_id=int(m["n"]))
    if token.startswith("#") and len(token) > 1:
        return IncidentRef(channel_name=token[1:].lower())
    return None


def parse_user(token: str) -> str:
    """A Slack user mention to its user id; a plain @name cannot be resolved and says so."""
    if m := _USER_MENTION.fullmatch(token):
        return m["id"]
    if token.startswith("@"):
        raise UsageError(
            f"I couldn't tell who {token} is: pick the person from Slack's @-autocomplete so the mention "
            "becomes a link (and make sure the command has 'Escape channels, users, and links' enabled)."
        )
    raise UsageError(f"{token!r} is not a user: mention someone with @, e.g. @alice")


def parse_severity(token: str, max_level: int) -> int:
    """`sev2`, `SEV2` or `2`."""
    m = re.fullmatch(r"(?:sev)?(\d+)", token.strip().lower())
    if not m or not 1 <= int(m[1]) <= max_level:
        raise UsageError(f"{token!r} is not a severity: use sev1 (worst) to sev{max_level}, or just 1 to {max_level}")
    return int(m[1])


def looks_like_severity(token: str) -> bool:
    """`sev2`, but also what was meant as one: `sev99`, `SEV`, `sev1:`, `sev-1`, so a typo is never a title word."""
    return re.fullmatch(r"sev[\W_]*\d*[\W_]*", token.lower()) is not None


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
        if not re.fullmatch(r"sev\d+", first.lower()):
            raise UsageError(
                f"{first!r} is not a severity: write sev1 (worst) to sev{config.max_level} as one word right "
                "before the title, e.g. `declare sev2 Checkout API 5xx`."
            )
        severity = parse_severity(first, config.max_level)
    else:
        title = rest
    if not title.strip():
        raise UsageError("Missing the title after the severity.")
    # Slack escapes &, < and > in what people type; the title is kept as typed, the same from the form.
    return DeclareArgs(title=check_title(unescape(title), config), severity=severity)


def parse_update(rest: str, config: IncidentConfig) -> UpdateArgs:
    text, next_minutes = rest.strip(), None
    if m := _NEXT.search(" " + text):
        next_minutes = int(m["n"])
        if not 1 <= next_minutes <= MAX_NEXT_MINUTES:
            raise UsageError(f"`next` takes minutes from 1 to {MAX_NEXT_MINUTES}.")
        text = (" " + text)[: m.start()].strip()
    elif (m := _NEXT_ANY.search(text)) and re.match(r"[-+.\d]", m["n"]):
        # `next -5`, `next 1.5`: meant as the next update's ETA, but not one; never posted as update text.
        raise UsageError(f"`next` takes whole minutes from 1 to {MAX_NEXT_MINUTES} (got {m['n']!r}).")
    status = None
    if (m := _STATUS_PREFIX.match(text)) and m["s"].lower() in Status.__members__.values():
        status = Status(m["s"].lower())
        check_update_status(status, config)
        text = text[m.end() :]
    if not text.strip():
        raise UsageError("Say what changed, e.g. `update rolled back api to v41, error rate falling next 15`.")
    return UpdateArgs(text=text.strip(), status=status, next_minutes=next_minutes)


def parse_page(rest: str, config: IncidentConfig) -> int:
    tokens = rest.split()
    if not tokens:
        return 1
    if len(tokens) > 1 or not tokens[0].isdigit() or int(tokens[0]) < 1:
        raise UsageError("Give a page number (1 is the newest), or nothing.")
    return int(tokens[0])


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
    config.check_role(role)
    return role, parse_user(tokens[1])


def parse_sev(rest: str, config: IncidentConfig) -> int:
    tokens = rest.split()
    if len(tokens) != 1:
        raise UsageError("Give one severity.")
    return parse_severity(tokens[0], config.max_level)
