"""Slack mrkdwn pieces: mentions, timestamps each reader sees in their own timezone, incident labels."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.models import Incident


def slack_time(when: datetime) -> str:
    """A timestamp each reader sees in their own timezone, with a UTC fallback."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def mention(user: str | None) -> str:
    return f"<@{user}>" if user else "_unassigned_"


def short(incident: Incident) -> str:
    """`*INC-7* (SEV2) Checkout API 5xx`: how posts name an incident."""
    return f"*{incident.ref}* ({incident.sev_label}) {user_text(incident.title)}"


def ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


_TOKEN = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"@([UW][A-Z0-9]+)(?:\|[^|]*)?")
_CHANNEL = re.compile(r"#([CG][A-Z0-9]+)(?:\|[^|]*)?")
_URL = re.compile(r"(?:https?|mailto):[^\s|<>]+")


def escape(text: str) -> str:
    """Slack's three control characters as entities: the only escaping Slack wants."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack's entities back to the characters someone typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def user_text(text: str) -> str:
    """Text someone typed, safe to repost: user mentions and channel links keep working (naming people is the
    point of a handoff); broadcasts (`<!here>`, `<!channel>`, `<!everyone>`, `<!subteam^...>`) become plain
    words that ping nobody; a labelled link shows the address it really goes to; everything else is escaped.

    Accepts both what a slash command delivers (Slack-escaped, with `<...>` tokens) and raw form input.
    """
    out, pos = [], 0
    for m in _TOKEN.finditer(text):
        out.append(escape(unescape(text[pos : m.start()])))
        out.append(_token(m[1]))
        pos = m.end()
    out.append(escape(unescape(text[pos:])))
    return "".join(out)


def _token(inner: str) -> str:
    if m := _USER.fullmatch(inner):
        return f"<@{m[1]}>"
    if m := _CHANNEL.fullmatch(inner):
        return f"<#{m[1]}>"
    target, _, label = inner.partition("|")
    if target.startswith("!"):
        # <!here>, <!subteam^S1|@oncall>: the words, not the ping
        return escape(unescape(label or "@" + target[1:].split("^")[0]))
    if _URL.fullmatch(target):
        shown = unescape(label)
        return f"<{target}>" if not shown or shown == target else f"{escape(shown)} (<{target}>)"
    return escape(unescape(f"<{inner}>"))


def plain(text: str) -> str:
    """Text someone typed, for plain_text fields (headers, topics): no markup at all, tokens as words."""

    def word(m: re.Match[str]) -> str:
        target, _, label = m[1].partition("|")
        if target.startswith("@") or target.startswith("!"):
            return unescape(label) if label else "@" + target[1:].split("^")[0]
        if target.startswith("#"):
            return "#" + unescape(label) if label else target
        if _URL.fullmatch(target):
            return target
        return m[0]

    return unescape(_TOKEN.sub(word, text))
