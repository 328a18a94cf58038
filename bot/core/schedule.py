"""When firebreak next has to chase an incident, and for what: a pure function of the record and the team's
practice. The store writes its answer (`reminder.at`) with every save, and keeps one durable job at that time,
so moving, cancelling and restoring reminders is just saving the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from bot.core.config import IncidentConfig
from bot.models import IC, Incident


class Action(StrEnum):
    REMIND = "remind"
    """The status update is due (or a reminder went unanswered): remind the IC."""
    ESCALATE = "escalate"
    """Reminders were missed in a row: remind, and call the escalation target."""
    NUDGE_ROLES = "nudge_roles"
    """Nobody is IC (or a required role is empty) some minutes after the declare."""
    ESCALATE_ROLES = "escalate_roles"
    """Still nobody, a while after the nudge."""
    STALE = "stale"
    """Open with no activity for a long time: the daily "update or resolve" nudge."""


@dataclass(frozen=True)
class Due:
    at: datetime
    action: Action


class Schedule:
    def __init__(self, config: IncidentConfig) -> None:
        self.config = config
        self.rules = config.reminders

    def stamp(self, incident: Incident) -> Incident:
        """The record with `reminder.at` set to its next due time (what the store schedules the job for)."""
        due = self.next(incident)
        at = due.at if due else None
        if incident.reminder.at == at:
            return incident
        return incident.model_copy(update={"reminder": incident.reminder.model_copy(update={"at": at})})

    def next(self, incident: Incident) -> Due | None:
        if not incident.is_open:
            return None
        found = [d for d in (self._update(incident), self._roles(incident), self._stale(incident)) if d]
        return min(found, key=lambda d: d.at) if found else None

    def missing_roles(self, incident: Incident) -> list[str]:
        return [r for r in (IC, *self.rules.required_roles) if not incident.roles.get(r)]

    def _update(self, i: Incident) -> Due | None:
        r = i.reminder
        if i.next_update_due is None:
            return None
        if r.missed == 0 or r.last_at is None:
            return Due(i.next_update_due, Action.REMIND)
        if r.missed >= self.rules.escalate_after and not r.escalated:
            return Due(r.last_at + timedelta(minutes=self.rules.repeat_minutes), Action.ESCALATE)
        # Once escalated, the IC is reminded at the severity's cadence rather than every few minutes.
        every = (
            self.rules.repeat_minutes
            if not r.escalated
            else max(self.rules.repeat_minutes, self.config.severity(i.severity).update_every_minutes)
        )
        return Due(r.last_at + timedelta(minutes=every), Action.REMIND)

    def _roles(self, i: Incident) -> Due | None:
        if not self.missing_roles(i):
            return None
        wait = timedelta(minutes=self.rules.no_ic_minutes)
        r = i.reminder
        if r.role_nudges == 0:
            return Due(i.declared_at + wait, Action.NUDGE_ROLES)
        if r.role_nudges == 1 and r.role_at is not None:
            return Due(r.role_at + wait, Action.ESCALATE_ROLES)
        return None  # nudged and escalated: the daily stale nudge is what remains

    def _stale(self, i: Incident) -> Due | None:
        """The first `stale_hour` (team's time) after `stale_hours` without activity, once a day."""
        zone = self.rules.zone
        quiet_since = max(t for t in (i.declared_at, i.last_activity_at, i.last_update_at) if t is not None)
        earliest = quiet_since + timedelta(hours=self.rules.stale_hours)
        if i.reminder.stale_at is not None:
            earliest = max(earliest, i.reminder.stale_at + timedelta(hours=20))
        local = earliest.astimezone(zone)
        at = datetime.combine(local.date(), time(self.rules.stale_hour), tzinfo=zone)
        if at < local:
            at = datetime.combine(local.date() + timedelta(days=1), time(self.rules.stale_hour), tzinfo=zone)
        return Due(at.astimezone(earliest.tzinfo), Action.STALE)
