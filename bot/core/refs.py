"""Incident references, what makes two titles the same, and how incident channels are named."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

from bot.models import Incident

MAX_CHANNEL_NAME = 80
MAX_SLUG = 40


@dataclass(frozen=True)
class IncidentRef:
    """What a user pointed at: an incident id, a channel id, or a channel name."""

    incident_id: int | None = None
    channel_id: str | None = None
    channel_name: str | None = None


def title_fingerprint(title: str) -> str:
    """What makes two titles the same title: Unicode-aware (NFKC, casefold), whitespace folded.

    `数据库宕机` and `支付失败` stay different; `Checkout  DOWN` and `checkout down` are the same.
    """
    return " ".join(unicodedata.normalize("NFKC", title).casefold().split())


def slugify(title: str) -> str:
    """Channel-safe slug: lowercase ascii letters, digits and single hyphens; other scripts transliterated
    (`Ошибка оплаты` -> `oshibka-oplaty`, `数据库宕机` -> `shujukudangji`). Empty when nothing is left."""
    ascii_title = anyascii(unicodedata.normalize("NFKC", title))
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:MAX_SLUG].rstrip("-")


def channel_name(prefix: str, incident: Incident, attempt: int = 1) -> str:
    """inc-20261124-api-errors, then inc-20261124-api-errors-2, -3 ... when taken; inc-20261124-incident-7
    when the title leaves no slug (emoji only)."""
    slug = slugify(incident.title) or f"incident-{incident.id}"
    base = f"{prefix}-{incident.declared_at:%Y%m%d}-{slug}"
    suffix = "" if attempt == 1 else f"-{attempt}"
    return base[: MAX_CHANNEL_NAME - len(suffix)] + suffix
