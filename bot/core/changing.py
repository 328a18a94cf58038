"""Changing an open incident: roles, severity, status updates, notes, resolve and reopen."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.changes import Outcome, change_incident
from bot.core.config import IncidentConfig
from bot.core.deps import Deps, Verbs
from bot.core.errors import InvalidTransition, UsageError
from bot.core.jobs import Op
from bot.core.publishing import Publisher, channel_of
from bot.core.recovery import observe_recovery, unmet_line, verified_event
from bot.models import (
    IC,
    MAX_TEXT,
    Actor,
    IcHandoff,
    Incident,
    NoteAdded,
    Payload,
    ReminderState,
    Reopened,
    Resolved,
    RoleAssigned,
    SeverityChanged,
    Status,
    StatusUpdated,
    TimelineEvent,
    Verified,
)
from bot.models.evidence import Recovery

Result = tuple[Incident, list[TimelineEvent]]


def answered(i: Incident) -> ReminderState:
    """An update answers the reminders: the streak ends, and the next reminder is for the next due time."""
    return i.reminder.model_copy(update={"missed": 0, "escalated": False, "message_ts": None, "last_at": None})


def replanned(i: Incident, level: int, now: datetime, config: IncidentConfig) -> datetime:
    """The next update's due time at a new severity: the new cadence counted from the last update (or the
    declare), never in the past. Raising it only brings the due time forward; lowering it only pushes it back."""
    planned = max(now, (i.last_update_at or i.declared_at) + config.cadence(level))
    if i.next_update_due is None:
        return planned
    return min(i.next_update_due, planned) if level < i.severity else max(i.next_update_due, planned)


def check_update_status(status: Status | None, config: IncidentConfig) -> None:
    """An update may set any open status; resolving has its own verb (it closes the incident)."""
    if status is Status.RESOLVED:
        raise UsageError(f"To resolve, use `{config.command} resolve [summary]`.")


class Changing(Verbs):
    def __init__(self, deps: Deps, publisher: Publisher) -> None:
        super().__init__(deps)
        self.publisher = publisher

    def _event(self, actor: Actor, payload: Payload) -> TimelineEvent:
        return TimelineEvent(at=self.clock(), actor=actor, payload=payload)

    async def assign_role(
        self, incident: Incident, role: str, user: str, actor: Actor, op: Op | None = None
    ) -> Outcome:
        op = op or Op.fresh()
        self.config.check_role(role)

        def change(i: Incident) -> Result | None:
            previous = i.roles.get(role)
            if previous == user:
                return None
            if role == IC and previous:
                payload: Payload = IcHandoff(user=user, previous=previous)
            else:
                payload = RoleAssigned(role=role, user=user, previous=previous)
            return i.model_copy(update={"roles": {**i.roles, role: user}}), [self._event(actor, payload)]

        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        if recorded is None:
            return Outcome(after, changed=False)
        warnings: list[str] = []
        what = f"invite the new {'incident commander' if role == IC else role} to the channel"
        await self.publisher.soft(after, warnings, what, self.chat.invite(channel_of(after), [user]))
        await self.publisher.publish(incident, after, recorded, op=op, warnings=warnings)
        return Outcome(after, True, warnings)

    async def set_severity(self, incident: Incident, level: int, actor: Actor, op: Op | None = None) -> Outcome:
        op = op or Op.fresh()
        self.config.severity(level)
        now = self.clock()

        def change(i: Incident) -> Result | None:
            if i.severity == level:
                return None
            update: dict[str, object] = {"severity": level}
            if i.is_open:
                update["next_update_due"] = replanned(i, level, now, self.config)
            return i.model_copy(update=update), [
                self._event(actor, SeverityChanged(previous=i.severity, severity=level))
            ]

        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        if recorded is None:
            return Outcome(after, changed=False)
        warnings = await self.publisher.publish(incident, after, recorded, op=op, thread=True)
        return Outcome(after, True, warnings)

    async def post_update(
        self,
        incident: Incident,
        text: str,
        actor: Actor,
        *,
        status: Status | None = None,
        next_minutes: int | None = None,
        op: Op | None = None,
    ) -> Outcome:
        op = op or Op.fresh()
        text = text.strip()[:MAX_TEXT]
        if not text:
            raise UsageError(f"Say what changed: `{self.config.command} update <text> [next <minutes>]`")
        check_update_status(status, self.config)
        now = self.clock()

        def change(i: Incident) -> Result:
            if not i.is_open:
                raise InvalidTransition(
                    f"{i.ref} is resolved. `{self.config.command} reopen` it first if it's back, or add a note."
                )
            due = now + (timedelta(minutes=next_minutes) if next_minutes else self.config.cadence(i.severity))
            new_status = status or i.status
            event = self._event(actor, StatusUpdated(text=text, status=new_status, next_update_due=due))
            answering[:] = [i.reminder.message_ts] if i.reminder.message_ts else []
            update = {"status": new_status, "last_update_at": now, "next_update_due": due, "reminder": answered(i)}
            return i.model_copy(update=update), [event]

        answering: list[str] = []
        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        warnings = await self.publisher.publish(incident, after, recorded or [], op=op, thread=True)
        for ts in answering:
            if recorded:
                await self.publisher.answer_reminder(after, ts, recorded[0])
        return Outcome(after, True, warnings)

    async def add_note(self, incident: Incident, text: str, actor: Actor, op: Op | None = None) -> Outcome:
        op = op or Op.fresh()
        text = text.strip()
        if not text:
            raise UsageError(f"Nothing to note: `{self.config.command} note <text>`")
        await self.store.append(incident.id, self._event(actor, NoteAdded(text=text[:MAX_TEXT])), op.key)
        return Outcome(incident)

    async def resolve(
        self,
        incident: Incident,
        summary: str,
        actor: Actor,
        op: Op | None = None,
        *,
        recovery: Recovery | None = None,
        anyway: bool = False,
    ) -> Outcome:
        """Resolve. `recovery` is the check run just before (a verified one is recorded, once); `anyway` says the
        person was shown what is not healthy or still in force and chose to resolve: the timeline keeps what."""
        op = op or Op.fresh()
        now = self.clock()
        summary = summary.strip()[:MAX_TEXT]

        def change(i: Incident) -> Result:
            if not i.is_open:
                raise InvalidTransition(f"{i.ref} was already resolved at {i.resolved_at:%Y-%m-%d %H:%M} UTC.")
            answering[:] = [i.reminder.message_ts] if i.reminder.message_ts else []
            update: dict[str, object] = {
                "status": Status.RESOLVED,
                "resolved_at": now,
                "resolution": summary or None,
                "next_update_due": None,
                "reminder": ReminderState(),
            }
            events = []
            if recovery is not None and recovery.recovered and i.recovered_at is None:
                update["recovered_at"] = recovery.at
                events.append(verified_event(recovery, actor))
            overridden: list[str] = []
            if anyway:
                overridden += [f"M{a.number} {a.label} left in force" for a in i.active]
                overridden += [f"not verified: {unmet_line(u)}" for u in (recovery.unmet if recovery else ())]
            events.append(self._event(actor, Resolved(summary=summary or None, overridden=overridden)))
            return i.model_copy(update=update), events

        answering: list[str] = []
        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        if recorded is not None and any(isinstance(e.payload, Verified) for e in recorded):
            observe_recovery(self.metrics, after)
        warnings = await self.publisher.publish(incident, after, recorded or [], op=op, thread=True)
        for ts in answering:
            if recorded:
                await self.publisher.answer_reminder(after, ts, recorded[-1])
        return Outcome(after, True, warnings)

    async def reopen(self, incident: Incident, actor: Actor, op: Op | None = None) -> Outcome:
        op = op or Op.fresh()
        now = self.clock()

        def change(i: Incident) -> Result:
            if i.is_open:
                raise InvalidTransition(f"{i.ref} is still open ({i.status.value}); nothing to reopen.")
            update = {
                "status": Status.INVESTIGATING,
                "resolved_at": None,
                "resolution": None,
                "next_update_due": now + self.config.cadence(i.severity),
                "reminder": ReminderState(),
            }
            return i.model_copy(update=update), [self._event(actor, Reopened())]

        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        warnings = await self.publisher.publish(incident, after, recorded or [], op=op, thread=True)
        return Outcome(after, True, warnings)
