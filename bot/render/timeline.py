"""Timeline events as sentences: one wording per event kind, for the timeline view and the posts that tell them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.core.guide import question_text
from bot.models import (
    IC,
    Actor,
    ActorKind,
    Alerted,
    ChannelCreated,
    Declared,
    Escalated,
    EventKind,
    EvidenceShared,
    GuideAnswered,
    IcHandoff,
    Missed,
    Mitigated,
    NoteAdded,
    Nudged,
    Pinned,
    Reminded,
    Reopened,
    Resolved,
    RoleAssigned,
    SeverityChanged,
    Snoozed,
    StatusUpdated,
    TimelineEvent,
    Unpinned,
    Verified,
    Warned,
)
from bot.render.mrkdwn import escape, mention, slack_time, user_text

EVENT_EMOJI = {
    EventKind.DECLARED: ":rotating_light:",
    EventKind.CHANNEL_CREATED: ":hash:",
    EventKind.ROLE_ASSIGNED: ":bust_in_silhouette:",
    EventKind.IC_HANDOFF: ":arrows_counterclockwise:",
    EventKind.SEVERITY_CHANGED: ":chart_with_upwards_trend:",
    EventKind.STATUS_UPDATE: ":memo:",
    EventKind.NOTE: ":spiral_note_pad:",
    EventKind.MITIGATION: ":hammer_and_wrench:",
    EventKind.SNOOZED: ":zzz:",
    EventKind.MISSED: ":hourglass:",
    EventKind.ESCALATED: ":rotating_light:",
    EventKind.NUDGED: ":wave:",
    EventKind.ALERT: ":bell:",
    EventKind.PINNED: ":pushpin:",
    EventKind.UNPINNED: ":pushpin:",
    EventKind.RESOLVED: ":white_check_mark:",
    EventKind.REOPENED: ":leftwards_arrow_with_hook:",
    EventKind.REMINDER: ":alarm_clock:",
    EventKind.WARNING: ":warning:",
    EventKind.EVIDENCE: ":bar_chart:",
    EventKind.VERIFIED: ":large_green_circle:",
    EventKind.GUIDE: ":compass:",
}


def who(actor: Actor) -> str:
    """A person as a mention; a source by what it is (an alert by its name)."""
    if actor.kind is ActorKind.USER:
        return mention(actor.id)
    if actor.kind is ActorKind.ALERT:
        return f"alert {actor.name or actor.id}"
    return actor.kind.value


def _escalation(target: str | None) -> str:
    if target is None:
        return "the channel"
    return f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"


def event_text(e: TimelineEvent) -> str:
    """What happened, in one sentence."""
    p = e.payload
    match p:
        case Declared():
            return f"Declared SEV{p.severity}: {user_text(p.title)}"
        case ChannelCreated():
            return f"Channel #{p.channel_name} created"
        case RoleAssigned():
            name = "incident commander" if p.role == IC else p.role
            taking_over = f" (taking over from <@{p.previous}>)" if p.previous else ""
            return f"<@{p.user}> is {name}{taking_over}"
        case IcHandoff():
            return f"Incident commander handed off from <@{p.previous}> to <@{p.user}>"
        case SeverityChanged():
            return f"Severity {'raised' if p.raised else 'lowered'} from SEV{p.previous} to SEV{p.severity}"
        case StatusUpdated() | NoteAdded() | Pinned():
            return user_text(p.text)
        case Warned():
            return p.text  # firebreak's own words
        case Unpinned():
            return "Unpinned a message"
        case Resolved():
            line = "Resolved" + (f": {user_text(p.summary)}" if p.summary else "")
            return line + (f" · resolved anyway over: {escape('; '.join(p.overridden))}" if p.overridden else "")
        case Verified():
            worst = " · ".join(f"{escape(name)} {value * 100:.2f}% at worst" for name, value in p.slo.items())
            minutes = f"{p.window_seconds / 60:g} min"
            return f"Recovery verified over {minutes}: {worst or 'every SLO signal met'}; {p.layers} layer check(s)"
        case GuideAnswered():
            basis = f" (from the facts: {escape(p.basis)})" if p.basis else ""
            return f"Guide: {escape(question_text(p.question))} {escape(p.answer)}{basis}"
        case Reopened():
            return "Reopened"
        case Reminded():
            return "Status update overdue; IC reminded"
        case Snoozed():
            return f"Update snoozed {p.minutes} min (next by {slack_time(p.until)})"
        case Missed():
            return f"Reminder missed ({p.reminders} in a row)"
        case Escalated():
            return f"Escalated to {_escalation(p.target)}: {escape(p.reason)}"
        case Nudged():
            return f"Nudged: {escape(p.reason)}"
        case Alerted():
            where = ",".join(f"{k}={v}" for k, v in sorted(p.scope.items()))
            line = f"Alert `{escape(p.name)}` {p.status}" + (f" ({escape(where)})" if where else "")
            line += f": {escape(p.summary)}" if p.summary and p.status == "firing" else ""
            line += f" · explained by {escape(p.inhibited_by)}" if p.inhibited_by else ""
            return line + (f" · lacks {escape(', '.join(p.flags))}" if p.flags else "")
        case Mitigated():
            return f"Mitigation M{p.number} `{p.playbook}` {p.action}: {escape(p.text)}"
        case EvidenceShared():
            parts = ["suspect: " + escape(", ".join(p.suspect)) if p.suspect else "no layer suspect"]
            for name, value in p.slo.items():
                burn = f" (burn rate {p.burn[name]:.3g}x)" if name in p.burn else ""
                parts.append(f"{escape(name)} {value * 100:.2f}%{burn}")
            if p.failed:
                parts.append(f"{p.failed} queries failed")
            return "Evidence shared: " + " · ".join(parts)
    raise AssertionError(f"no wording for {e.kind}")


@dataclass(frozen=True)
class PinView:
    """What the timeline knows about pins: which messages are unpinned now, and each pinned message's text."""

    unpinned: frozenset[str] = frozenset()
    texts: Mapping[str, str] = field(default_factory=dict)


def pin_view(events: list[TimelineEvent]) -> PinView:
    """A message is unpinned when its pins were all taken back: as many unpins as pins."""
    pins = Counter(e.payload.message_ts for e in events if isinstance(e.payload, Pinned))
    unpins = Counter(e.payload.message_ts for e in events if isinstance(e.payload, Unpinned))
    texts = {e.payload.message_ts: e.payload.text for e in events if isinstance(e.payload, Pinned)}
    return PinView(frozenset(ts for ts, n in pins.items() if unpins[ts] >= n), texts)


def folded(events: list[TimelineEvent]) -> list[TimelineEvent | tuple[TimelineEvent, int, int]]:
    """A run's API calls, folded into one entry per run of consecutive calls: (first, calls, failed).
    Every call stays in the record (the postmortem reads them); a 600-pod drain is one line here."""
    out: list[TimelineEvent | tuple[TimelineEvent, int, int]] = []
    for e in events:
        p = e.payload
        if isinstance(p, Mitigated) and p.action == "call":
            failed = int(": failed" in p.text or ": unknown" in p.text)
            last = out[-1] if out else None
            prior = last[0].payload if isinstance(last, tuple) else None
            if isinstance(last, tuple) and isinstance(prior, Mitigated) and prior.number == p.number:
                out[-1] = (last[0], last[1] + 1, last[2] + failed)
                continue
            out.append((e, 1, failed))
        else:
            out.append(e)
    return out


def calls_line(first: TimelineEvent, calls: int, failed: int) -> str:
    p = first.payload
    assert isinstance(p, Mitigated)
    fails = f", {failed} failed" if failed else ""
    what = f"*M{p.number}* `{p.playbook}`: {calls} API call(s){fails} (`/incident audit` lists each)"
    return f"{slack_time(first.at)} {EVENT_EMOJI.get(first.kind, '•')} {what}"


def event_line(e: TimelineEvent, pins: PinView | None = None) -> str:
    """One timeline line; updates, notes and pins say what they are, since their text is the person's own."""
    pins = pins or PinView()
    p = e.payload
    if isinstance(p, StatusUpdated):
        text = f"*Update* ({p.status.value}): {user_text(p.text)}"
    elif isinstance(p, NoteAdded):
        text = f"*Note:* {user_text(p.text)}"
    elif isinstance(p, Pinned):
        author = f" (posted by {mention(p.author)})" if p.author else ""
        mark = " _(unpinned)_" if p.message_ts in pins.unpinned else ""
        text = f"*Pinned:* {user_text(p.text)}{author}{mark}"
    elif isinstance(p, Unpinned) and p.message_ts in pins.texts:
        text = f"*Unpinned:* {user_text(_excerpt(pins.texts[p.message_ts]))}"
    else:
        text = event_text(e)
    by = f" — {who(e.actor)}" if e.actor.kind in (ActorKind.USER, ActorKind.ALERT) else ""
    return f"{slack_time(e.at)} {EVENT_EMOJI.get(e.kind, '•')} {text}{by}"


def _excerpt(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
