"""Slack mrkdwn pieces: mentions, timestamps each reader sees in their own timezone, incident labels."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import Incident


def slack_time(when: datetime) -> str:
    """A timestamp each reader sees in their own timezone, with a UTC fallback."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def mention(user: str | None) -> str:
    return f"<@{user}>" if user else "_unassigned_"


def channel_link(channel_id: str) -> str:
    return f"<#{channel_id}>"


def short(incident: Incident) -> str:
    """`*INC-7* (SEV2) Checkout API 5xx`: how posts name an incident."""
    return f"*{incident.ref}* ({incident.sev_label}) {incident.title}"


def ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
