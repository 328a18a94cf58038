"""What every verb family works with: one store, one chat, the team's practice and one clock."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.config import IncidentConfig
from bot.core.metrics import Metrics
from bot.core.ports import Chat, Clock, IncidentStore


@dataclass(frozen=True)
class Deps:
    store: IncidentStore
    chat: Chat
    config: IncidentConfig
    clock: Clock
    metrics: Metrics | None = None


class Verbs:
    """A family of verbs (declaring, changing, pins, reminders, publishing) over the same collaborators."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.store = deps.store
        self.chat = deps.chat
        self.config = deps.config
        self.clock = deps.clock
        self.metrics = deps.metrics
