"""`/incident guide` as one message: the answers so far with their advice, the next question's buttons, and the
catalogue scenarios that fit the incident."""

from __future__ import annotations

import json
from typing import Any

from bot.core.catalogue import Scenario
from bot.core.evidence_config import EvidenceConfig
from bot.core.guide import YES, Answer, advice, choices, next_question, question_text
from bot.render.blocks import Block, actions, button, context, section
from bot.render.mrkdwn import escape

GUIDE_ACTION_PREFIX = "fb_guide_"
"""One action per answer (`fb_guide_yes`, `fb_guide_gpu`): Slack wants action ids unique within a block."""
MAX_SUGGESTED = 3


def guide_action(answer: str) -> str:
    return GUIDE_ACTION_PREFIX + answer.replace("-", "_")


def answer_actions() -> tuple[str, ...]:
    return tuple(dict.fromkeys(guide_action(a) for q in ("impact", "layer") for a in choices(q)))


def encode(incident_id: int, answers: tuple[Answer, ...], answer: str) -> str:
    return json.dumps({"incident": incident_id, "path": [[a.question, a.answer] for a in answers], "answer": answer})


def decode(value: str) -> tuple[int, tuple[Answer, ...], str]:
    raw: Any = json.loads(value)
    path = tuple(Answer(str(q), str(a)) for q, a in raw["path"])
    return int(raw["incident"]), path, str(raw["answer"])


def _scenario(s: Scenario) -> str:
    playbooks = ", ".join(f"`{p}`" for p in s.playbooks) or "none"
    evidence = ", ".join(escape(e) for e in s.evidence) or "none configured"
    return (
        f"*{escape(s.title)}* ({', '.join(layer.value for layer in s.layers)})\n"
        f"First: {escape(s.first_stabilizer)}\nEvidence: {evidence} · Playbooks: {playbooks}"
    )


def guide_blocks(
    incident_id: int,
    answers: tuple[Answer, ...],
    suggested: list[Scenario],
    scenarios: tuple[Scenario, ...],
    evidence: EvidenceConfig,
) -> tuple[str, list[Block]]:
    """The message's text and blocks for this point of the path."""
    blocks: list[Block] = [section(f"*:compass: Guide for incident #{incident_id}*")]
    if suggested:
        blocks.append(section("*Scenarios that fit the alerts:*"))
        blocks.extend(section(_scenario(s)) for s in suggested[:MAX_SUGGESTED])
    for a in answers:
        line = f"*{escape(question_text(a.question))}* {escape(a.answer)}\n{advice(a)}"
        if a.question == "impact" and a.answer == YES:
            playbooks = sorted({p for s in suggested for p in s.playbooks})
            line += "\nPlaybooks: " + (
                ", ".join(f"`/incident mitigate {p}`" for p in playbooks) if playbooks else "`/incident mitigate`"
            )
        elif a.question == "impact":
            line += "\n`/incident evidence` posts the panel; pin what matters."
        elif a.question == "layer":
            checks = [escape(c.name) for c in evidence.checks if c.layer.value == a.answer]
            known = [escape(s.title) for s in scenarios if any(layer.value == a.answer for layer in s.layers)]
            line += "\nChecks: " + (", ".join(checks) or "none configured: the missing signal to add")
            if known:
                line += "\nKnown scenarios: " + "; ".join(known)
        elif a.question == "saturation" and a.answer == YES:
            line += "\n`/incident mitigate scale ...` adds warm capacity."
        blocks.append(section(line))
    question = next_question(answers)
    if question is None:
        blocks.append(section("*Verify:* `/incident verify` checks the SLO signals recovered over the window."))
        return "Guide: done; verify recovery with /incident verify.", blocks
    blocks.append(section(f"*{question_text(question)}*"))
    buttons = [button(guide_action(c), c, encode(incident_id, answers, c)) for c in choices(question)]
    for start in range(0, len(buttons), 5):
        blocks.append(actions(*buttons[start : start + 5]))
    blocks.append(context(f"{len(answers)} answer(s) recorded on the timeline."))
    return f"Guide: {question_text(question)}", blocks
