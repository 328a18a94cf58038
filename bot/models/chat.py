"""What the core asks chat to show, as facts; the chat adapter decides how it looks."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.models.evidence import Evidence
from bot.models.incident import Incident
from bot.models.mitigation import Mitigation
from bot.models.timeline import TimelineEvent


class PostKind(StrEnum):
    SUMMARY = "summary"
    """The incident's card in its channel, kept current."""
    ANNOUNCEMENT = "announcement"
    """The incident's root message in the announcement channel, kept current."""
    EVENT = "event"
    """A timeline event worth telling people about: an update, a handoff, a severity change, a resolution."""
    MITIGATION = "mitigation"
    """A mitigation request: its plan, state and buttons, edited in place as it is approved and run."""
    REMINDER = "reminder"
    """A reminder (or nudge, or escalation) with its buttons; edited when answered, snoozed or missed."""
    ALERTS = "alerts"
    """The incident's storm message: its alerts counted by name and scope, edited in place (at most once a
    second), instead of one message per alert."""
    MITIGATION_RESULT = "mitigation_result"
    """What a run did to each object, with Undo when something can be undone."""
    EVIDENCE = "evidence"
    """The evidence panel: golden signals and layer health for the incident's scope, as of one moment."""


class Post(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: PostKind
    incident: Incident
    """The record as of this post."""
    event: TimelineEvent | None = None
    """For EVENT posts: the event to tell."""
    thread_ts: str | None = None
    """Reply in this thread (the announcement's) instead of the channel."""
    mitigation: Mitigation | None = None
    """For MITIGATION posts: the request as of this post."""
    counts: dict[str, int] | None = None
    """For ALERTS posts: occurrences by "<alertname> <scope>" label, and flags by "lacks: <what>"."""
    answer: TimelineEvent | None = None
    """For REMINDER posts being edited: what answered it (an update, a snooze, a miss, the resolve); its
    buttons go."""
    evidence: Evidence | None = None
    """For EVIDENCE posts: what Prometheus answered."""


class ChatMessage(BaseModel):
    """A message read back from the chat platform (for pins and :pushpin: reactions)."""

    model_config = ConfigDict(frozen=True)

    ts: str
    text: str
    user: str | None = None
