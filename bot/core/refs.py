"""Parsing of what people type: incident references, user mentions, severities, channel names."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from bot.core.errors import UsageError

_CHANNEL_MENTION = re.compile(r"<#(?P<id>[CG][A-Z0-9]+)(?:\|(?P<name>[^>]*))?>")
_USER_MENTION = re.compile(r"<@(?P<id>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
_INC_ID = re.compile(r"inc-(?P<n>\d{1,7})", re.IGNORECASE)
MAX_CHANNEL_NAME = 80
MAX_SLUG = 40


@dataclass(frozen=True)
class IncidentRef:
    """What a user pointed at: an incident id, a channel id, or a channel name."""

    incident_id: int | None = None
    channel_id: str | None = None
    channel_name: str | None = None


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
    m = re.fullmatch(r"(?:sev)?(\d)", token.strip().lower())
    if not m or not 1 <= int(m[1]) <= max_level:
        raise UsageError(f"{token!r} is not a severity: use sev1 (worst) to sev{max_level}, or just 1 to {max_level}")
    return int(m[1])


def looks_like_severity(token: str) -> bool:
    return re.fullmatch(r"sev\d", token.lower()) is not None


def slugify(title: str) -> str:
    """Channel-safe slug: lowercase ascii letters, digits and single hyphens."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    slug = slug[:MAX_SLUG].rstrip("-")
    return slug or "incident"


def channel_name(prefix: str, when: datetime, title: str, attempt: int = 1) -> str:
    """inc-20261124-api-errors, then inc-20261124-api-errors-2, -3 ... when taken."""
    base = f"{prefix}-{when:%Y%m%d}-{slugify(title)}"
    suffix = "" if attempt == 1 else f"-{attempt}"
    return base[: MAX_CHANNEL_NAME - len(suffix)] + suffix
