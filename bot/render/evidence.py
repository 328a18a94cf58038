"""The evidence panel as Block Kit: golden signals against an hour and a day ago, layers, and what failed."""

from __future__ import annotations

from bot.models import Incident
from bot.models.evidence import Evidence, Health, LayerReading, Reading, Recovery, SignalGroup, SignalReading, Unmet
from bot.render.blocks import Block, chunks, clip, context, fitting, section
from bot.render.mrkdwn import ago, escape, slack_time

HEALTH_ICON = {Health.HEALTHY: ":large_green_circle:", Health.SUSPECT: ":red_circle:", Health.UNKNOWN: ":white_circle:"}
EVIDENCE_ACTION = "fb_evidence"
FAILURES_BUDGET = 4000
"""Characters the failed queries may take: many queries failing in many ways must not push the panel past
what one Slack message holds."""


def number(value: float, unit: str) -> str:
    """A value as its unit reads: ratios as percentages, seconds as ms below one."""
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "/s":
        return f"{value:.3g}/s"
    if unit == "bytes":
        for size, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:.4g}" + (f" {escape(unit)}" if unit else "")


def shown(reading: Reading, unit: str) -> str:
    if reading.error is not None:
        return "_query failed_"
    if reading.value is None:
        return "_no data_"
    return number(reading.value, unit)


MOVED = 2.0
"""A signal that moved by this factor or more since an hour or a day ago is flagged (up or down)."""


def moved(s: SignalReading, then: Reading, label: str) -> str | None:
    """How far the value moved since `then`, when it moved by MOVED or more. For an SLO signal (a share of good
    events) what moves is its complement, the error share: 99.9% to 99% is ten times the errors."""
    if s.now.value is None or then.value is None:
        return None
    now, before = (1 - s.now.value, 1 - then.value) if s.slo is not None else (s.now.value, then.value)
    what = "errors " if s.slo is not None else ""
    if abs(now - before) < 1e-12:
        return None
    if before == 0 or now == 0:
        if now > before:
            return f":small_red_triangle: {what}up from 0 vs {label}"
        return f":small_red_triangle_down: {what}down to 0 vs {label}"
    factor = now / before
    if factor >= MOVED:
        return f":small_red_triangle: {what}{factor:.2g}x vs {label}"
    if factor <= 1 / MOVED:
        return f":small_red_triangle_down: {what}{1 / factor:.2g}x lower vs {label}"
    return None


def signal_line(s: SignalReading) -> str:
    line = f"• *{escape(s.name)}* {shown(s.now, s.unit)} · 1 h ago {shown(s.hour_ago, s.unit)}"
    line += f" · 1 d ago {shown(s.day_ago, s.unit)}"
    flags = [f for f in (moved(s, s.hour_ago, "1 h ago"), moved(s, s.day_ago, "1 d ago")) if f is not None]
    if flags:
        line += " · " + ", ".join(flags)
    if s.slo is not None:
        target = f"SLO {s.slo * 100:g}%"
        if s.burn_rate is None:
            line += f" · burn rate unknown ({target})"
        else:
            icon = " :fire:" if s.burn_rate > 1 else ""
            line += f" · burn rate *{s.burn_rate:.3g}x*{icon} ({target})"
    return line


def layer_line(c: LayerReading) -> str:
    side = ">" if c.bad.value == "above" else "<"
    bound = f"suspect when {side} {number(c.threshold, c.unit)}"
    value = shown(c.reading, c.unit)
    return f"{HEALTH_ICON[c.health]} *{c.layer.value}* · {escape(c.name)}: {value} ({bound})"


def failure_lines(failed: list[tuple[str, str, str]]) -> list[str]:
    """One line per reason (Prometheus down fails every query the same way), naming what failed; a query that
    failed alone is shown with its text."""
    by_reason: dict[str, list[tuple[str, str]]] = {}
    for name, query, reason in failed:
        by_reason.setdefault(reason, []).append((name, query))
    lines = []
    for reason, items in by_reason.items():
        if len(items) == 1:
            name, query = items[0]
            lines.append(clip(f"• *{escape(name)}* `{escape(clip(query, 300))}`: {escape(reason)}", 900))
        else:
            names = ", ".join(escape(n) for n, _ in items)
            lines.append(clip(f"• {len(items)} queries: {escape(reason)}. They were: {names}", 2000))
    kept = fitting(lines, FAILURES_BUDGET)
    if len(kept) < len(lines):
        kept.append(f"• …and {len(lines) - len(kept)} more reasons")
    return kept


def verdict(evidence: Evidence) -> str:
    suspect = list(dict.fromkeys(c.layer.value for c in evidence.layers if c.health is Health.SUSPECT))
    unknown = sum(1 for c in evidence.layers if c.health is Health.UNKNOWN)
    if suspect:
        text = ":red_circle: *Suspect layers:* " + ", ".join(suspect)
    elif evidence.layers:
        text = ":large_green_circle: No layer is past its threshold"
    else:
        text = "No layer checks apply to this scope"
    return text + (f" ({unknown} check(s) unknown)" if unknown else "")


def evidence_post(incident: Incident, evidence: Evidence) -> tuple[str, list[Block]]:
    scope = ", ".join(f"{k}={escape(v)}" for k, v in sorted(evidence.scope.items())) or "no scope labels"
    head = f":bar_chart: *Evidence for {incident.ref}* · {scope} · as of {slack_time(evidence.at)}"
    blocks: list[Block] = [section(head), section(verdict(evidence))]
    for group in SignalGroup:
        lines = [signal_line(s) for s in evidence.signals if s.group is group]
        if lines:
            blocks += chunks(f"*{group.value.capitalize()}*", [clip(x) for x in lines])
    if evidence.layers:
        blocks += chunks("*Layers*", [clip(layer_line(c)) for c in evidence.layers])
    failed = evidence.failed
    if failed:
        blocks += chunks(f":x: *{len(failed)} quer{'y' if len(failed) == 1 else 'ies'} failed*", failure_lines(failed))
    if evidence.skipped:
        notes = "; ".join(f"{escape(s.name)} (needs {', '.join(s.missing)})" for s in evidence.skipped)
        blocks.append(context(clip(f"Left out, as this incident's scope lacks their labels: {notes}", 2900)))
    suspect = [c.name for c in evidence.layers if c.health is Health.SUSPECT]
    text = f"Evidence for {incident.ref}: " + (f"suspect {', '.join(suspect)}" if suspect else "no layer suspect")
    if failed:
        text += f"; {len(failed)} queries failed"
    return text, blocks


def unmet_text(u: Unmet) -> str:
    """One thing keeping recovery from being verified, with its value against its target, or why it is unknown."""
    where = f"*{u.layer.value}* · " if u.layer is not None else ""
    name = f"{where}*{escape(u.name)}*"
    if u.value is None:
        query = f" `{escape(clip(u.query, 300))}`" if u.query else ""
        return clip(f":white_circle: {name} unknown{query}: {escape(u.reason or 'no data')}", 900)
    target = u.target if u.target is not None else 0.0
    if u.layer is None:
        bound = f"worst {number(u.value, u.unit)} over the window, SLO {number(target, u.unit)}"
    else:
        bound = f"{number(u.value, u.unit)} now ({'>' if u.bad.value == 'above' else '<'} {number(target, u.unit)})"
    extra = f"; {escape(u.reason)}" if u.reason else ""
    return clip(f":red_circle: {name} {bound}{extra}", 900)


def window_text(recovery: Recovery) -> str:
    seconds = recovery.window_seconds
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def recovery_lines(recovery: Recovery) -> list[str]:
    """What is not healthy, SLO signals (user-facing first) before layers, capped to fit one message."""
    lines = [unmet_text(u) for u in recovery.unmet]
    kept = fitting(lines, FAILURES_BUDGET)
    if len(kept) < len(lines):
        kept.append(f"• …and {len(lines) - len(kept)} more")
    return kept


def recovery_reply(incident: Incident, recovery: Recovery) -> tuple[str, list[Block]]:
    """`/incident verify`'s answer: recovered (and since when it counts), or what is not."""
    checked = f"{', '.join(escape(s) for s in recovery.signals)} over {window_text(recovery)}"
    checked += f", {recovery.layers} layer check(s) now"
    if recovery.recovered:
        since = slack_time(incident.recovered_at) if incident.recovered_at else slack_time(recovery.at)
        text = f":large_green_circle: {incident.ref} has recovered: every SLO met over the window, every layer healthy."
        took = incident.time_to_recover
        start = "impact started" if incident.impact_started_at else "it was declared"
        after = f", {ago(took)} after {start}" if took is not None else ""
        return text, [section(text), context(f"Checked {checked}. Verified recovery recorded at {since}{after}.")]
    text = f":red_circle: {incident.ref} has not verifiably recovered: {len(recovery.unmet)} not healthy."
    return text, [section(text), *chunks("*Not healthy*", recovery_lines(recovery)), context(f"Checked {checked}.")]
