"""`/incident changes` as Block Kit: one line per change, newest first, each with buttons that request the
playbook that would stop or undo it (a plan for approval; nothing runs from the click itself)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.what_changed import Change, Changes, Mitigation, PoolSplit, Rollout, Sync, suggestion
from bot.render.blocks import Block, actions, button, clip, context, numbered, section

CHANGE_ACTION = "fb_change_mitigate"
CHANGE_BUTTONS = 4
"""A change's buttons, numbered (`fb_change_mitigate_0`, `_1`, ...)."""


VALUE_LIMIT = 2000
"""Slack refuses a button value longer than this."""
MAX_LINES = 15
"""Each line takes up to three blocks (text, a note, buttons); Slack allows 50 blocks a message."""
GROUPS_SHOWN = 4


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "unknown time"


def change_text(change: Change) -> str:
    if isinstance(change, Rollout):
        images = ", ".join(f"`{i}`" for i in change.images) or "no containers"
        now = " (current)" if change.current else ""
        return (
            f":rocket: *{_when(change.at)}* Deployment `{change.namespace}/{change.deployment}` "
            f"rolled out revision {change.revision}{now}: {images}"
        )
    if isinstance(change, Sync):
        return (
            f":arrows_counterclockwise: *{_when(change.at)}* {change.kind} `{change.namespace}/{change.name}` "
            f"synced to `{change.revision}`"
        )
    return split_text(change)


def _group(g: Any) -> str:
    driver = f", GPU driver {g.gpu_driver}" if g.gpu_driver else ""
    return (
        f"{len(g.nodes)} node(s) on {g.os_image}, kubelet {g.kubelet}, kernel {g.kernel}{driver} "
        f"(newest created {_when(g.newest)})"
    )


def split_text(split: PoolSplit) -> str:
    newest, *older = split.groups
    appeared = "appeared in the window" if split.appeared_in_window else "appeared before the window"
    lines = [
        f":warning: *{_when(split.at)}* Pool `{split.pool}` is split across {len(split.groups)} node images "
        f"(a node-image rollout in progress?). Newest ({appeared}): {_group(newest)}"
    ]
    lines += [f"    • {_group(g)}" for g in older[:GROUPS_SHOWN]]
    if len(older) > GROUPS_SHOWN:
        lines.append(f"    • and {len(older) - GROUPS_SHOWN} more group(s)")
    return "\n".join(lines)


def _params(params: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def button_value(incident_id: int, m: Mitigation, cluster: str | None) -> tuple[str, Mitigation]:
    """The click's value: the incident, the playbook and its parameters. A node list too long for Slack's limit is
    shortened (the text says which nodes the button names)."""
    params = dict(m.params) | ({"cluster": cluster} if cluster else {})
    while True:
        value = json.dumps({"incident": incident_id, "playbook": m.playbook, "params": _params(params)})
        nodes = params.get("nodes", "").split(",")
        if len(value) <= VALUE_LIMIT or len(nodes) < 2:
            return value, Mitigation(m.playbook, params)
        params["nodes"] = ",".join(nodes[:-1])


def change_buttons(incident_id: int, change: Change, cluster: str | None, max_nodes: int) -> tuple[Block | None, str]:
    elements: list[Block] = []
    notes: list[str] = []
    for m in suggestion(change, max_nodes)[:CHANGE_BUTTONS]:
        value, sent = button_value(incident_id, m, cluster)
        label = f"{m.playbook} {sent.params.get('revision', '')}".strip()
        if m.playbook == "cordon":
            named = sent.params["nodes"].split(",")
            label = f"cordon {len(named)} node(s)"
            total = len(change.groups[0].nodes) if isinstance(change, PoolSplit) else len(named)
            if len(named) < total:
                notes.append(f"The cordon button names the first {len(named)} of {total} nodes (a request's limit).")
        elements.append(button(numbered(CHANGE_ACTION, len(elements)), label[:75], value))
    return (actions(*elements) if elements else None), " ".join(notes)


def changes_blocks(incident_id: int, found: Changes, cluster: str | None, max_nodes: int) -> list[Block]:
    """`cluster`: the context the person named (None: the default), carried into each button's request."""
    who = f", service `{found.service}`" if found.service else ""
    head = (
        f"*What changed in the last {found.hours:g} h* (since {_when(found.since)}) in cluster `{found.cluster}`, "
        f"namespace `{found.namespace}`{who}; newest first."
    )
    blocks: list[Block] = [section(head)]
    if not found.items:
        blocks.append(section(f"No rollouts, GitOps syncs or split node pools ({found.pools} pool(s) looked at)."))
    for change in found.items[:MAX_LINES]:
        row, note = change_buttons(incident_id, change, cluster, max_nodes)
        blocks.append(section(clip(change_text(change), 2900)))
        if note:
            blocks.append(context(note))
        if row is not None:
            blocks.append(row)
    left = len(found.items) - MAX_LINES
    tail = [f"{left} older change(s) not shown; ask for fewer hours."] if left > 0 else []
    tail += found.notes
    tail.append("A button posts a plan for approval; nothing changes until it is approved.")
    blocks.append(context("\n".join(tail)))
    return blocks


def changes_text(found: Changes) -> str:
    return f"What changed in the last {found.hours:g} h: {len(found.items)} change(s)."
