"""Overdue-update reminders: the IC of an open incident is nudged once per cadence when no update came."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core.changes import change_incident
from bot.core.deps import Verbs
from bot.core.errors import FirebreakError
from bot.core.jobs import Op
from bot.core.publishing import channel_of
from bot.models import SCHEDULER, Incident, Post, PostKind, Reminded, TimelineEvent

log = logging.getLogger(__name__)

REMINDER_LEASE_SECONDS = 120


class Reminders(Verbs):
    async def remind_due(self, limit: int = 50) -> int:
        """Nudge the IC of every open incident whose status update is overdue; returns how many were reminded."""
        now = self.clock()
        reminded = 0
        for incident_id in await self.store.due_for_reminder(now, REMINDER_LEASE_SECONDS, limit):
            try:
                reminded += await self._remind(incident_id, now)
            except FirebreakError as exc:
                log.warning("reminder for INC-%s failed: %s", incident_id, exc)
        return reminded

    async def _remind(self, incident_id: int, now: datetime) -> int:
        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            if not i.is_open or i.next_update_due is None or i.next_update_due > now or i.channel_id is None:
                return None
            due = now + self.config.cadence(i.severity)
            payload = Reminded(ic=i.ic, due=i.next_update_due, last_update_at=i.last_update_at)
            return i.model_copy(update={"next_update_due": due}), [
                TimelineEvent(at=now, actor=SCHEDULER, payload=payload)
            ]

        # One op per incident and due time: a sweep repeated after a crash finds the reminder already made.
        op = Op(f"reminder:{incident_id}:{int(now.timestamp())}")
        incident, recorded = await change_incident(self.store, incident_id, change, op)
        if recorded is None:
            return 0
        (event,) = recorded
        post = Post(kind=PostKind.EVENT, incident=incident, event=event)
        await self.chat.post(channel_of(incident), post, key=op.part("post"))
        return 1
