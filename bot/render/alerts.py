"""Alerts in Slack: a triage message per alert group, with Declare incident and Ignore until someone decides."""

from __future__ import annotations

from bot.models import Triage
from bot.render.blocks import Block, actions, button, context, section
from bot.render.mrkdwn import plain, slack_time

TRIAGE_DECLARE_ACTION = "fb_triage_declare"
TRIAGE_IGNORE_ACTION = "fb_triage_ignore"
SHOWN = 10


def triage_message(t: Triage) -> tuple[str, list[Block]]:
    a = t.alert
    labels = ", ".join(f"{k}={plain(v)}" for k, v in sorted(a.labels.items()) if k != "alertname")
    total = sum(t.counts.values()) or 1
    head = f":bell: *{plain(a.name)}*: {plain(a.summary)}\n`{labels}` · since {slack_time(a.starts_at)}"
    lines = [f"• {n} x {plain(k)}" for k, n in sorted(t.counts.items(), key=lambda kv: -kv[1])[:SHOWN]]
    blocks: list[Block] = [section(head)]
    if lines:
        blocks.append(section(f"*{total} alert(s) in this group*\n" + "\n".join(lines)))
    links = [
        f"<{u}|{name}>"
        for name, u in (("source", a.generator_url), ("runbook", a.annotations.get("runbook_url", "")))
        if u
    ]
    if links:
        blocks.append(context(" · ".join(links)))
    if t.decided == "declared":
        blocks.append(context(f":rotating_light: Declared as INC-{t.incident_id} by <@{t.decided_by}>."))
    elif t.decided == "ignored":
        blocks.append(context(f":see_no_evil: Ignored by <@{t.decided_by}>: more of this group is not shown here."))
    else:
        blocks.append(
            actions(
                {**button(TRIAGE_DECLARE_ACTION, "Declare incident", t.group), "style": "danger"},
                button(TRIAGE_IGNORE_ACTION, "Ignore", t.group),
            )
        )
    return f"{a.name}: {a.summary} ({total} alert(s))", blocks
