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
    Warned,
)

log = logging.getLogger(__name__)

REMINDER_JOB = "reminder"
GIVE_UP_SECONDS = 3600.0
"""Slack failing for this long past a reminder's time: it is recorded as not posted and the schedule goes on."""
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
            if incident is not None and incident.is_open:
                await self.restamp(incident_id, op)  # the job for what is due now must exist
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

    async def restamp(self, incident_id: int, op: Op) -> None:
        """Save the record unchanged: the save computes its reminder time again (the practice may have changed
        since it was saved) and makes sure that time's job is queued."""
        await change_incident(self.store, incident_id, lambda i: (i, []), op.sub("restamp"))

    async def reconcile(self) -> int:
        """At start: every open incident's reminder job, for records saved before reminders were jobs or under
        another configuration. Returns how many records were saved again."""
        incidents = await self.store.list_open()
        for incident in incidents:
            await self.restamp(incident.id, Op(f"reconcile:{incident.id}:{incident.version}"))
        return len(incidents)

    async def _post(
        self, channel: str, post: Post, key: str, op: Op, late: float, warned: list[TimelineEvent]
    ) -> str | None:
        """Post, keyed. Slack refusing it (or failing for over an hour) doesn't stop the schedule: the refusal
        goes into the timeline and the next reminder is planned as if this one had been posted."""
        try:
            op.check()
            return await self.chat.post(channel, post, key=key, recover=op.recovering)
        except ChatError as exc:
            if exc.transient and late < GIVE_UP_SECONDS:
                raise
            log.error("%s: could not post a reminder: %s", post.incident.ref, exc)
            text = f"Couldn't post a reminder in the channel: {exc}"
            warned.append(TimelineEvent(at=self.clock(), actor=SCHEDULER, payload=Warned(text=text)))
            return None

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
        post = Post(kind=PostKind.REMINDER, incident=incident, event=reminded)
        ts = await self._post(channel, post, op.part("remind"), op, late, events)
        if escalate:
            reason = f"{r.missed} reminders in a row went unanswered"
            escalated = self._event(now, Escalated(target=self.config.reminders.escalation, reason=reason))
            events.append(escalated)
            await self._tell(incident, escalated, op, "escalate", late=late, warned=events)
        answered_meanwhile: list[bool] = []

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                answered_meanwhile[:] = [True]
                return i  # answered meanwhile: the reminder is on record, the state is the answer's
            answered_meanwhile.clear()
            state = {"missed": r.missed + 1, "last_at": now, "message_ts": ts, "escalated": r.escalated or escalate}
            return i.model_copy(update={"reminder": i.reminder.model_copy(update=state)})

        await self._save(incident, change, events, op)
        if answered_meanwhile and ts:  # an update or a snooze came while it was being posted: no live buttons
            note = self._event(self.clock(), Warned(text="answered while it was being posted"))
            await self.publisher.answer_reminder(incident, ts, note)

    async def _roles(self, incident: Incident, due: Due, now: datetime, late: float, op: Op) -> None:
        missing = self.schedule.missing_roles(incident)
        names = ", ".join("IC" if m == "ic" else m for m in missing)
        if due.action is Action.ESCALATE_ROLES:
            reason = f"still nobody is {names}"
            payload: Payload = Escalated(target=self.config.reminders.escalation, reason=reason)
        else:
            payload = Nudged(reason=f"nobody is {names} yet", roles=missing)
        event = self._event(now, payload)
        events = [event]
        await self._tell(incident, event, op, "roles", late=late, warned=events)

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                return i
            state = {"role_nudges": i.reminder.role_nudges + 1, "role_at": now}
            return i.model_copy(update={"reminder": i.reminder.model_copy(update=state)})

        await self._save(incident, change, events, op)

    async def _stale(self, incident: Incident, due: Due, now: datetime, late: float, op: Op) -> None:
        quiet = now - max(t for t in (incident.declared_at, incident.last_activity_at) if t is not None)
        hours = int(quiet.total_seconds() // 3600)
        event = self._event(now, Nudged(reason=f"no activity for {hours} h"))
        events = [event]
        await self._tell(incident, event, op, "stale", late=late, warned=events)

        def change(i: Incident) -> Incident:
            if self.schedule.next(i) != due:
                return i
            return i.model_copy(update={"reminder": i.reminder.model_copy(update={"stale_at": now})})

        await self._save(incident, change, events, op)

    async def _tell(
        self, incident: Incident, event: TimelineEvent, op: Op, name: str, *, late: float, warned: list[TimelineEvent]
    ) -> None:
        """Post in the incident channel and, for an escalation, under the announcement too (keyed posts)."""
        post = Post(kind=PostKind.EVENT, incident=incident, event=event)
        await self._post(channel_of(incident), post, op.part(name), op, late, warned)
        if isinstance(event.payload, Escalated) and incident.announce_channel and incident.announce_ts:
            threaded = post.model_copy(update={"thread_ts": incident.announce_ts})
            announce = await self.chat.resolve_channel(incident.announce_channel)
            await self._post(announce, threaded, op.part(f"{name}-thread"), op, late, warned)

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
