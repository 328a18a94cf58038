"""Who acted: a person, or a source such as an alert or the scheduler, so a source never becomes anyone's IC."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ActorKind(StrEnum):
    USER = "user"
    """A person in Slack; `id` is their user id."""
    ALERT = "alert"
    """An alert from a monitoring system; `id` is its fingerprint, `name` its alert name."""
    SCHEDULER = "scheduler"
    """firebreak's scheduler (reminders, escalations)."""
    FIREBREAK = "firebreak"
    """firebreak itself, as a consequence of something else (a channel created, a warning)."""


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ActorKind
    id: str = ""
    name: str = ""

    @classmethod
    def user(cls, user_id: str) -> Actor:
        return cls(kind=ActorKind.USER, id=user_id)

    @classmethod
    def alert(cls, fingerprint: str, name: str) -> Actor:
        return cls(kind=ActorKind.ALERT, id=fingerprint, name=name)

    @property
    def user_id(self) -> str | None:
        """The Slack user id when a person acted; None for sources."""
        return self.id if self.kind is ActorKind.USER else None

    @property
    def is_person(self) -> bool:
        return self.kind is ActorKind.USER


FIREBREAK = Actor(kind=ActorKind.FIREBREAK)
SCHEDULER = Actor(kind=ActorKind.SCHEDULER)
