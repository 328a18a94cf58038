"""`/incident guide` as one message: the answers so far with their advice (and, for the ones firebreak gave from
the facts, their basis and an "Answer differently" button), playbooks and change rollbacks as buttons, the next
question with what the facts hint, and the catalogue scenarios that fit the incident."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.core.catalogue import Scenario
from bot.core.evidence_config import EvidenceConfig
from bot.core.guide import YES, Answer, advice, choices, next_question, question_text
from bot.core.guiding import Hint, recent
from bot.core.what_changed import Changes
from bot.render.blocks import Block, actions, button, clip, context, numbered, section
from bot.render.mrkdwn import escape
from bot.render.what_changed import change_buttons, change_text

GUIDE_ACTION_PREFIX = "fb_guide_"
"""One action per answer (`fb_guide_yes`, `fb_guide_gpu`): Slack wants action ids unique within a block."""
REVISE_ACTION = "fb_guide_revise"
PLAYBOOK_ACTION = "fb_guide_playbook"
MAX_SUGGESTED = 3
MAX_CHANGES = 3
MAX_PLAYBOOKS = 5


def guide_action(answer: str) -> str:
    return GUIDE_ACTION_PREFIX + answer.replace("-", "_")


def answer_actions() -> tuple[str, ...]:
    return tuple(dict.fromkeys(guide_action(a) for q in ("impact", "layer") for a in choices(q)))


@dataclass(frozen=True)
class Click:
    """What a guide button carries: the run, the version of it the message showed (how many answers it had
    recorded), the step the button answers or re-asks, the answer, and the facts' hints."""

    incident: int
    run: str
    version: int
    step: int
    answer: str = ""
    hints: dict[str, Hint] = field(default_factory=dict)


VALUE_LIMIT = 2000
"""Slack refuses a button value longer than this (in characters)."""


def encode(click: Click) -> str:
    """The click as a button value, within Slack's limit: bases are shortened, then dropped, to fit (the answers
    they back always travel)."""
    raw: dict[str, Any] = {"i": click.incident, "g": click.run, "v": click.version, "k": click.step, "a": click.answer}
    for keep in (None, 60, 0):
        raw["h"] = {q: [h.answer, h.basis if keep is None else h.basis[:keep]] for q, h in click.hints.items()}
        value = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
        if len(value) <= VALUE_LIMIT:
            return value
    raise ValueError("a guide click does not fit in a button value")  # four answers without bases always fit


def decode(value: str) -> Click:
    raw: Any = json.loads(value)
    hints = {str(q): Hint(str(a), str(b)) for q, (a, b) in dict(raw.get("h") or {}).items()}
    return Click(int(raw["i"]), str(raw["g"]), int(raw["v"]), int(raw["k"]), str(raw.get("a", "")), hints)


@dataclass
class GuideView:
    incident_id: int
    run: str
    version: int
    answers: tuple[Answer, ...]
    """The path shown; when re-asking a step, the path before it."""
    hints: dict[str, Hint]
    suggested: list[Scenario]
    scenarios: tuple[Scenario, ...]
    evidence: EvidenceConfig
    playbooks: dict[str, str]
    """Known playbook names to the parameters the scope fills in (`namespace=serving deployment=checkout`)."""
    changes: Changes | None = None
    cluster: str | None = None
    max_nodes: int = 20
    notes: list[str] = field(default_factory=list)
    stale: str | None = None
    """Said first when the click came from an older view of the guide."""


def _scenario(s: Scenario) -> str:
    playbooks = ", ".join(f"`{p}`" for p in s.playbooks) or "none"
    evidence = ", ".join(escape(e) for e in s.evidence) or "none configured"
    return (
        f"*{escape(s.title)}* ({', '.join(layer.value for layer in s.layers)})\n"
        f"First: {escape(s.first_stabilizer)}\nEvidence: {evidence} · Playbooks: {playbooks}"
    )


def _playbook_buttons(view: GuideView, names: list[str]) -> list[Block]:
    known = [n for n in names if n in view.playbooks][:MAX_PLAYBOOKS]
    if not known:
        return []
    elements = [
        button(
            numbered(PLAYBOOK_ACTION, i),
            f"Plan {name}"[:75],
            json.dumps({"i": view.incident_id, "p": name, "params": view.playbooks[name]}),
        )
        for i, name in enumerate(known)
    ]
    return [actions(*elements)]


def _change_blocks(view: GuideView) -> list[Block]:
    if view.changes is None:
        return [context("`/incident changes` lists the recent changes with their rollback and pause buttons.")]
    blocks: list[Block] = []
    for change in recent(view.changes)[:MAX_CHANGES]:
        blocks.append(section(clip(change_text(change), 2900)))
        row, note = change_buttons(view.incident_id, change, view.cluster, view.max_nodes)
        if note:
            blocks.append(context(note))
        if row is not None:
            blocks.append(row)
    return blocks


def _answered(view: GuideView, step: int, a: Answer) -> list[Block]:
    line = f"*{escape(question_text(a.question))}* {escape(a.answer)}"
    if a.basis:
        line += f" (firebreak, from the facts: {escape(a.basis)})"
    line += f"\n{advice(a)}"
    extra: list[Block] = []
    if a.question == "impact" and a.answer == YES:
        wanted = list(dict.fromkeys(p for s in view.suggested for p in s.playbooks))
        line += "\nPlaybooks: " + (
            ", ".join(f"`/incident mitigate {p}`" for p in wanted) if wanted else "`/incident mitigate`"
        )
        extra = _playbook_buttons(view, wanted or ["rollback", "pause-sync", "cordon"])
    elif a.question == "impact":
        line += "\n`/incident evidence` posts the panel; pin what matters."
    elif a.question == "layer":
        checks = [escape(c.name) for c in view.evidence.checks if c.layer.value == a.answer]
        known = [escape(s.title) for s in view.scenarios if any(layer.value == a.answer for layer in s.layers)]
        line += "\nChecks: " + (", ".join(checks) or "none configured: the missing signal to add")
        if known:
            line += "\nKnown scenarios: " + "; ".join(known)
    elif a.question == "change" and a.answer == YES:
        extra = _change_blocks(view)
    elif a.question == "saturation" and a.answer == YES:
        extra = _playbook_buttons(view, ["scale"])
    revise = Click(view.incident_id, view.run, view.version, step, hints=view.hints)
    return [section(clip(line, 2900)), *extra, actions(button(REVISE_ACTION, "Answer differently", encode(revise)))]


def guide_blocks(view: GuideView) -> tuple[str, list[Block]]:
    """The message's text and blocks for this point of the path."""
    blocks: list[Block] = [section(f"*:compass: Guide for incident #{view.incident_id}*")]
    if view.stale:
        blocks.append(section(f":warning: {escape(view.stale)}"))
    if view.suggested:
        blocks.append(section("*Scenarios that fit the alerts:*"))
        blocks.extend(section(_scenario(s)) for s in view.suggested[:MAX_SUGGESTED])
    for step, a in enumerate(view.answers):
        blocks.extend(_answered(view, step, a))
    question = next_question(view.answers)
    notes = [escape(n) for n in view.notes]
    if question is None:
        blocks.append(section("*Verify:* `/incident verify` checks the SLO signals recovered over the window."))
        if notes:
            blocks.append(context(clip("Left out: " + "; ".join(notes), 2900)))
        return "Guide: done; verify recovery with /incident verify.", blocks
    hint = view.hints.get(question)
    asked = f"*{question_text(question)}*"
    if hint is not None:
        asked += f"\nThe facts suggest *{escape(hint.answer)}*: {escape(hint.basis)}"
    blocks.append(section(clip(asked, 2900)))
    step = len(view.answers)
    buttons = []
    for c in choices(question):
        value = encode(Click(view.incident_id, view.run, view.version, step, c, view.hints))
        shown = button(guide_action(c), c, value)
        buttons.append({**shown, "style": "primary"} if hint is not None and hint.answer == c else shown)
    for start in range(0, len(buttons), 5):
        blocks.append(actions(*buttons[start : start + 5]))
    recorded = sum(1 for a in view.answers if not a.basis)
    tail = [f"{len(view.answers)} answer(s) on the timeline ({len(view.answers) - recorded} from the facts)."]
    if notes:
        tail.append("Left out: " + "; ".join(notes))
    blocks.append(context(clip(" ".join(tail), 2900)))
    return f"Guide: {question_text(question)}", blocks
