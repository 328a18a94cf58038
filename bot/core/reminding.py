"""The reminder job: when an incident's `reminder.at` comes, remind the IC (escalating after missed reminders),
nudge about a missing IC or required role, or ask about a forgotten incident; and snoozes.

Exactly once, across replicas and crashes: the job is the queue's (one claim, a lease another replica takes
over after a SIGKILL); its posts are keyed, so a resumed job finds what it posted; its record write carries
the job's op key, so it lands once and moves the schedule on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.core.changes import Outcome, change_incident
from bot.core.deps import Deps, Verbs
from bot.core.errors import ChatError, InvalidTransition, UsageError
from bot.core.jobs import Job, Op, TryLater
from bot.core.publishing import Publisher, channel_of
from bot.core.schedule import Action, Due, Schedule
from bot.models import (
    SCHEDULER,
    Actor,
    Escalated,
    Incident,
    Missed,
    Nudged,
    Payload,
    Post,
    PostKind,
    Reminded,
    Snoozed,
    TimelineEvent,
)

log = logging.getLogger(__name__)

REMINDER_JOB = "reminder"
Change = Callable[[Incident], Incident]


class Reminding(Verbs):
    def __init__(self, deps: Deps, publisher: Publisher, schedule: Schedule) -> None:
        super().__init__(deps)
        self.publisher = publisher
        self.schedule = schedule

    def runners(self) -> dict[str, Callable[[Job, Op], Awaitable[None]]]:
        return {REMINDER_JOB: self.run_job}

    async def run_job(self, job: Job, op: Op) -> None:
        """Slack failing (429, 5xx, unreachable) makes the job run again after a backoff, for hours if need be;
        its posts are keyed, so what went out before the failure is found, not posted twice."""
        try:
            await self.act(int(job.payload["incident_id"]), datetime.fromisoformat(job.payload["at"]), op)
        except ChatError as exc:
            if exc.transient:
                raise TryLater(str(exc)) from exc
            log.error("INC-%s: reminder not posted, Slack refused it: %s", job.payload["incident_id"], exc)

    async def act(self, incident_id: int, at: datetime, op: Op) -> bool:
        """Do what is due at `at`, if it still is (an update, a snooze or a resolve may have moved it)."""
        incident = await self.store.get(incident_id)
        due = self.schedule.next(incident) if incident else None
        if incident is None or due is None or due.at != at:
            return False
        now = self.clock()
        if now < at:
            raise TryLater(f"INC-{incident_id}: reminder due at {at:%H:%M:%S}, the incident clock says {now:%H:%M:%S}")
        late = (now - at).total_seconds()
        if due.action in (Action.REMIND, Action.ESCALATE):
            await self._remind(incident, due, now, late, op)
        elif due.action in (Action.NUDGE_ROLES, Action.ESCALATE_ROLES):
            await self._roles(incident, due, now, late, op)
        else:
            await self._stale(incident, due, now, late, op)
        if self.metrics:
            self.metrics.reminders.inc()
        return True

    def _event(self, at: datetime, payload: Payload) -> TimelineEvent:
        return TimelineEvent(at=at, actor=SCHEDULER, payload=payload)

    async def _remind(self, incident: Incident, due: Due, now: datetime, late: float, op: Op) -> None:
        r, channel = incident.reminder, channel_of(incident)
        escalate = due.action is Action.ESCALATE
        assert incident.next_update_due is not None
        reminded = self._event(
            now,
            Reminded(
                ic=incident.ic,
                due=incident.next_update_due,
                last_update_at=incident.last_update_at,
                number=r.missed + 1,
                late_seconds=late,
            ),
        )
        missed = self._event(now, Missed(ic=incident.ic, reminders=r.missed))
        events = [missed, reminded] if r.missed else [reminded]
        if r.message_ts:  # the last reminder went unanswered: its buttons go, it says so
            await self.publisher.answer_reminder(incident, r.message_ts, missed)
        op.check()
        post = Post(kind=PostKind.REMINDER, incident=incident, event=reminded)
        ts = await self.chat.post(channel, post, key=op.part("remind"), recover=op.recovering)
        if escalate:
            reason = f"{r.missed} reminders in a row went unanswered"
            escalated = self._event(now, Escalated(target=self.config.reminders.escalation, reason=reason))
            events.append(escalated)
            await self._tell(incident, escalated, op, "escalate")

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                return i  # answered meanwhile: the reminder is on record, the state is the answer's
            state = {"missed": r.missed + 1, "last_at": now, "message_ts": ts, "escalated": r.escalated or escalate}
            return i.model_copy(update={"reminder": i.reminder.model_copy(update=state)})

        await self._save(incident, change, events, op)

    async def _roles(self, incident: Incident, due: Due, now: datetime, late: float, op: Op) -> None:
        missing = self.schedule.missing_roles(incident)
        names = ", ".join("IC" if m == "ic" else m for m in missing)
        if due.action is Action.ESCALATE_ROLES:
            reason = f"still nobody is {names}"
            payload: Payload = Escalated(target=self.config.reminders.escalation, reason=reason)
        else:
            payload = Nudged(reason=f"nobody is {names} yet", roles=missing)
        event = self._event(now, payload)
        await self._tell(incident, event, op, "roles", thread=due.action is Action.ESCALATE_ROLES)

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                return i
            state = {"role_nudges": i.reminder.role_nudges + 1, "role_at": now}
            return i.model_copy(update={"reminder": i.reminder.model_copy(update=state)})

        await self._save(incident, change, [event], op)

    async def _stale(self, incident: Incident, due: Due, now: datetime, late: float, op: Op) -> None:
        quiet = now - max(t for t in (incident.declared_at, incident.last_activity_at) if t is not None)
        hours = int(quiet.total_seconds() // 3600)
        event = self._event(now, Nudged(reason=f"no activity for {hours} h"))
        await self._tell(incident, event, op, "stale")

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                return i
            return i.model_copy(update={"reminder": i.reminder.model_copy(update={"stale_at": now})})

        await self._save(incident, change, [event], op)

    async def _tell(self, incident: Incident, event: TimelineEvent, op: Op, name: str, *, thread: bool = True) -> None:
        """Post in the incident channel and, for an escalation, under the announcement too (keyed posts)."""
        post = Post(kind=PostKind.EVENT, incident=incident, event=event)
        op.check()
        await self.chat.post(channel_of(incident), post, key=op.part(name), recover=op.recovering)
        if thread and isinstance(event.payload, Escalated) and incident.announce_channel and incident.announce_ts:
            threaded = post.model_copy(update={"thread_ts": incident.announce_ts})
            announce = await self.chat.resolve_channel(incident.announce_channel)
            op.check()
            await self.chat.post(announce, threaded, key=op.part(f"{name}-thread"), recover=op.recovering)

    async def _save(self, incident: Incident, change: Change, events: list[TimelineEvent], op: Op) -> None:
        await change_incident(self.store, incident.id, lambda i: (change(i), events), op, incident)

    # ---- answering a reminder ---------------------------------------------------------------------------------

    async def snooze(self, incident: Incident, minutes: int, actor: Actor, op: Op) -> Outcome:
        """Put the next update off by `minutes`: the reminder is answered (its buttons go) and the streak ends."""
        if minutes not in self.config.reminders.snooze_minutes:
            raise UsageError(f"Snooze for one of {', '.join(map(str, self.config.reminders.snooze_minutes))} min.")
        now = self.clock()
        until = now + timedelta(minutes=minutes)
        answered: list[str] = []
        event = TimelineEvent(at=now, actor=actor, payload=Snoozed(minutes=minutes, until=until))

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]]:
            if not i.is_open:
                raise InvalidTransition(f"{i.ref} is resolved; nothing to snooze.")
            answered[:] = [i.reminder.message_ts] if i.reminder.message_ts else []
            state = {"missed": 0, "escalated": False, "message_ts": None}
            updated = {"next_update_due": until, "reminder": i.reminder.model_copy(update=state)}
            return i.model_copy(update=updated), [event]

        after, recorded = await change_incident(self.store, incident.id, change, op, incident)
        for ts in answered:
            await self.publisher.answer_reminder(after, ts, event)
        warnings = await self.publisher.publish(incident, after, [], op=op)
        return Outcome(after, recorded is not None, warnings)
