"""The IC's decision tree: user impact, then the layer, then a recent change, then saturation or a dependency,
then verify. Pure: given the answers so far, what the next question is and what each answer advises."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models.evidence import Layer

YES, NO = "yes", "no"
QUESTIONS: dict[str, str] = {
    "impact": "Is user impact active right now?",
    "layer": "Which layer is failing?",
    "change": "Did something change recently in the scope?",
    "saturation": "Is it saturation or a failing dependency?",
}
"""Each question's key (recorded on the timeline) to how it is asked."""


def question_text(key: str) -> str:
    return QUESTIONS.get(key, key)


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    basis: str = ""
    """Set when firebreak answered from the evidence or the change history: what it read."""


def choices(question: str) -> tuple[str, ...]:
    return tuple(layer.value for layer in Layer) if question == "layer" else (YES, NO)


def next_question(answers: tuple[Answer, ...]) -> str | None:
    """The question after these answers, or None when the path ends (then: verify recovery)."""
    done = {a.question: a.answer for a in answers}
    for key in ("impact", "layer", "change"):
        if key not in done:
            return key
    if done["change"] == YES:
        return None
    return "saturation" if "saturation" not in done else None


def advice(a: Answer) -> str:
    """What an answer means for the IC, in plain words (the renderer adds commands and buttons)."""
    if a.question == "impact":
        if a.answer == YES:
            return "Mitigate first: stop the bleeding with the safest reversible move, understand it later."
        return "No active impact: preserve the evidence and the scope before anything changes it."
    if a.question == "layer":
        return f"Scope the incident to the {a.answer} layer: its checks and scenarios below."
    if a.question == "change":
        if a.answer == YES:
            return "Roll back or pause the change: `/incident changes` lists recent changes with their buttons."
        return "No recent change: look at load and dependencies."
    if a.answer == YES:
        return "Reduce load, add warm capacity, or shed: scale where capacity is warm, rate-limit the rest."
    return "Debug the internals, and name the signal that was missing for the postmortem."
