"""The atomic change loop: read, apply a pure function, compare-and-set, retry on conflict."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bot.core.errors import AlreadyApplied, Conflict, FirebreakError, NotFound
from bot.core.jobs import Op
from bot.core.ports import IncidentStore
from bot.models import ActorKind, Incident, TimelineEvent

CHANGE_ATTEMPTS = 25
T = TypeVar("T")
E = TypeVar("E")

Change = Callable[[Incident], tuple[Incident, list[TimelineEvent]] | None]
"""A pure function of the current record: the new record and the events that explain it, or None for no change."""


@dataclass
class Outcome:
    """What a command did: the incident after it, whether anything changed, and what went only partly right."""

    incident: Incident
    changed: bool = True
    warnings: list[str] = field(default_factory=list)


async def atomically(
    read: Callable[[], Awaitable[T]],
    write: Callable[[T, Sequence[E]], Awaitable[T]],
    change: Callable[[T], tuple[T, list[E]] | None],
    *,
    hint: T | None = None,
    attempts: int = CHANGE_ATTEMPTS,
    busy: str = "This is being changed by many people at once; try again in a moment.",
) -> tuple[T, list[E] | None]:
    """Apply `change` to a versioned record and write it with compare-and-set; a lost race re-reads and re-applies.

    Returns the written record and the events written with it, or the current record and None when `change`
    found nothing to do. The events are those of the attempt that won, so callers report exactly what landed.

    `hint` is a copy the caller already holds, tried first to save a read. Only a fresh read may conclude
    "nothing to change" or refuse the change (by raising FirebreakError), since the hint may be stale.
    `write` raises Conflict when someone else wrote since the read, and AlreadyApplied when this very change
    was written before (a repeat after a crash): then the current record and the events saved then are
    returned, and nothing is written twice.
    """
    current, fresh = hint, False
    for attempt in range(attempts):
        if current is None:
            current, fresh = await read(), True
        try:
            result = change(current)
        except FirebreakError:
            if fresh:
                raise
            current = None
            continue
        if result is None:
            if fresh:
                return current, None
            current = None
            continue
        updated, events = result
        try:
            return await write(updated, events), events
        except AlreadyApplied as done:
            return await read(), list(done.events)
        except Conflict:
            current = None
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
    raise FirebreakError(busy)


def active(incident: Incident, events: Sequence[TimelineEvent]) -> Incident:
    """Stamp the record with its last activity: a change a person (or an alert) made, not the scheduler's."""
    by_people = [e.at for e in events if e.actor.kind in (ActorKind.USER, ActorKind.ALERT)]
    if not by_people or (incident.last_activity_at and incident.last_activity_at >= max(by_people)):
        return incident
    return incident.model_copy(update={"last_activity_at": max(by_people)})


async def get_incident(store: IncidentStore, incident_id: int, command: str | None = None) -> Incident:
    incident = await store.get(incident_id)
    if incident is None:
        hint = f" `{command} list` shows open ones." if command else ""
        raise NotFound(f"There is no incident INC-{incident_id}.{hint}")
    return incident


async def change_incident(
    store: IncidentStore, incident_id: int, change: Change, op: Op, hint: Incident | None = None
) -> tuple[Incident, list[TimelineEvent] | None]:
    """`atomically` for an incident record and its timeline; `op` makes a repeat of the same change a no-op.

    A recovering op first asks whether it was applied already: the change may no longer look needed (the
    role is already that person's) precisely because this op made it, and its posts must still go out.
    """
    if op.recovering and (done := await store.applied(incident_id, op.key)) is not None:
        return await get_incident(store, incident_id), done
    return await atomically(
        lambda: get_incident(store, incident_id),
        lambda incident, events: store.save(active(incident, events), events, op.key),
        change,
        hint=hint,
        busy=f"INC-{incident_id} is being changed by many people at once; try again in a moment.",
    )
