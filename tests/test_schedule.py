"""The reminder schedule as a pure function of the record: what comes next, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.config import IncidentConfig, ReminderConfig
from bot.core.schedule import Action, Due, Schedule
from bot.models import Actor, Incident, ReminderState, Status

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # a Saturday night; Europe/Berlin moves its clocks that night


def incident(**kw: object) -> Incident:
    base: dict[str, object] = {
        "id": 1,
        "title": "GPU nodes flapping",
        "severity": 1,
        "declared_by": Actor.user("UALICE"),
        "declared_at": T0,
        "roles": {"ic": "UALICE"},
        "next_update_due": T0 + timedelta(minutes=30),
    }
    return Incident.model_validate(base | kw)


def schedule(**rules: object) -> Schedule:
    return Schedule(IncidentConfig(reminders=ReminderConfig.model_validate(rules)))


def test_the_first_reminder_is_at_the_due_time_then_repeats_then_escalates() -> None:
    s = schedule(repeat_minutes=10, escalate_after=2)
    assert s.next(incident()) == Due(T0 + timedelta(minutes=30), Action.REMIND)
    once = ReminderState(missed=1, last_at=T0 + timedelta(minutes=30))
    assert s.next(incident(reminder=once)) == Due(T0 + timedelta(minutes=40), Action.REMIND)
    twice = ReminderState(missed=2, last_at=T0 + timedelta(minutes=40))
    assert s.next(incident(reminder=twice)) == Due(T0 + timedelta(minutes=50), Action.ESCALATE)
    escalated = twice.model_copy(update={"missed": 3, "escalated": True, "last_at": T0 + timedelta(minutes=50)})
    assert s.next(incident(reminder=escalated)) == Due(T0 + timedelta(minutes=80), Action.REMIND), "the cadence"


def test_a_missing_role_is_nudged_then_escalated_then_left_to_the_daily_nudge() -> None:
    s = schedule(no_ic_minutes=5)
    nobody = incident(roles={}, next_update_due=T0 + timedelta(hours=2))
    assert s.next(nobody) == Due(T0 + timedelta(minutes=5), Action.NUDGE_ROLES)
    nudged = ReminderState(role_nudges=1, role_at=T0 + timedelta(minutes=5))
    assert s.next(nobody.model_copy(update={"reminder": nudged})) == Due(
        T0 + timedelta(minutes=10), Action.ESCALATE_ROLES
    )
    done = ReminderState(role_nudges=2, role_at=T0 + timedelta(minutes=10))
    assert s.next(nobody.model_copy(update={"reminder": done})) == Due(T0 + timedelta(hours=2), Action.REMIND)


def test_the_daily_nudge_is_at_the_teams_hour_across_a_clock_change() -> None:
    s = schedule(stale_hours=24, stale_hour=10, timezone="Europe/Berlin")
    quiet = incident(next_update_due=None)
    # Quiet since Saturday 23:00 Berlin (CET); 24 h later is Sunday 23:00 CEST; the nudge is Monday 10:00 CEST.
    assert s.next(quiet) == Due(datetime(2026, 3, 30, 8, 0, tzinfo=UTC), Action.STALE)
    nudged = quiet.model_copy(update={"reminder": ReminderState(stale_at=datetime(2026, 3, 30, 8, 0, tzinfo=UTC))})
    assert s.next(nudged) == Due(datetime(2026, 3, 31, 8, 0, tzinfo=UTC), Action.STALE), "once a day"
    active = quiet.model_copy(update={"last_activity_at": datetime(2026, 3, 30, 12, 0, tzinfo=UTC)})
    assert s.next(active) == Due(datetime(2026, 4, 1, 8, 0, tzinfo=UTC), Action.STALE), "activity restarts it"


def test_a_resolved_incident_has_nothing_scheduled_and_stamping_sets_the_time() -> None:
    s = schedule()
    assert s.next(incident(status=Status.RESOLVED)) is None
    assert s.stamp(incident()).reminder.at == T0 + timedelta(minutes=30)
    assert s.stamp(incident(status=Status.RESOLVED, next_update_due=None)).reminder.at is None
