"""Triage: alerts no route declares go to the triage channel, one message per Alertmanager group, counted and
edited at most once a second, with Declare incident and Ignore. Once someone decides, the buttons go; later alerts
of a declared group attach to its incident, those of an ignored group are only counted."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bot.core.alerting import Alerting, scope_text
from bot.core.errors import ChatError, InvalidTransition, NotFound
from bot.core.jobs import Job, JobRunner, Op, TryLater
from bot.core.ports import utcnow
from bot.models import Alert, AlertmanagerWebhook, Incident, Triage

TRIAGE_DIGEST_JOB = "triage-digest"
TRIAGE_QUEUE = "triage"
IGNORE_SECONDS = 24 * 3600
"""An ignored group is not offered again for a day; then, still firing, it is offered afresh."""


def group_id(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()[:16]


class Triaging(Alerting):
    def runners(self) -> dict[str, JobRunner]:
        return {**super().runners(), TRIAGE_DIGEST_JOB: self.triage_job}

    async def triage(self, hook: AlertmanagerWebhook, alert: Alert) -> None:
        gid = group_id(hook.group_key)
        await self._new_round_if_over(gid)
        await self.alerts.remember(f"triage-alert:{gid}", alert.model_dump_json(by_alias=True))
        await self.alerts.remember(f"triage-group:{gid}", hook.group_key)
        label = f"{alert.name} {scope_text(alert.scope(self.rules.scope_labels))}".strip()
        await self.alerts.collect(f"triage:{gid}", alert)  # joins the incident if someone declares one
        if await self.alerts.tally(f"triage:{gid}", alert.occurrence, label):
            await self.alerts.mark(TRIAGE_QUEUE, gid)
            await self._pace()

    async def _new_round_if_over(self, gid: str) -> None:
        """A group declared as an incident that has since been resolved, firing again, is offered afresh (a new
        message with live buttons), not counted into the old decided one."""
        decided = await self.alerts.recall(f"triage-decided:{gid}")
        if not decided or not decided.startswith("declared:"):
            return  # undecided, or ignored (an ignore lasts IGNORE_SECONDS)
        incident_id = decided.rsplit(":", 1)[-1]
        incident = await self.store.get(int(incident_id)) if incident_id.isdigit() else None
        if incident is None or not incident.is_open:
            keys = (f"triage-decided:{gid}", f"triage-ts:{gid}", f"triage-alert:{gid}", f"triage:{gid}")
            await self.alerts.forget(*keys)

    async def _pace(self) -> None:
        """One triage job per second for the whole channel: Slack takes about one message a second per channel,
        so twenty groups in a storm are shown one a second, each message with its latest counts."""
        now = utcnow()
        bucket = int(now.timestamp()) + 1
        job = Job(id=f"{TRIAGE_DIGEST_JOB}:{bucket}", kind=TRIAGE_DIGEST_JOB, payload={}, created_at=now)
        await self.queue.enqueue(job, datetime.fromtimestamp(bucket, UTC))

    async def _current(self, gid: str) -> Triage:
        doc = await self.alerts.recall(f"triage-alert:{gid}")
        if doc is None:
            raise NotFound("That alert group is no longer known to firebreak (a month old?); nothing was done.")
        decided = await self.alerts.recall(f"triage-decided:{gid}")
        state, by, incident = [*decided.split(":"), "", ""][:3] if decided else (None, None, "")
        return Triage(
            group=gid,
            alert=Alert.model_validate_json(doc),
            counts=await self.alerts.tallies(f"triage:{gid}"),
            decided=state,
            decided_by=by or None,
            incident_id=int(incident) if incident else None,
        )

    async def triage_job(self, job: Job, op: Op) -> None:
        """Show the group whose message is behind (post it once, then edit it), one per second."""
        gid, left = await self.alerts.take(TRIAGE_QUEUE)
        if gid is not None:
            try:
                await self._show(await self._current(gid), op)
            except ChatError as exc:
                await self.alerts.mark(TRIAGE_QUEUE, gid)  # not shown: it stays behind, for the retry
                if exc.transient:
                    raise TryLater(str(exc)) from exc
                raise
        if left:
            await self._pace()

    async def _show(self, triage: Triage, op: Op) -> None:
        assert self.triage_channel is not None
        key = f"triage-ts:{triage.group}"
        ts = await self.alerts.recall(key)
        if ts:
            await self.chat.edit_triage(self.triage_channel, ts, triage)
            return
        op.check()
        # Keyed by the round's first alert: a new round (the group firing again after its incident was resolved)
        # is a new message, while a retry of this round finds the one it posted.
        round_of = hashlib.sha256(triage.alert.occurrence.encode()).hexdigest()[:8]
        posted = await self.chat.post_triage(self.triage_channel, triage, key=f"triage:{triage.group}:{round_of}")
        await self.alerts.remember(key, posted)

    async def decide(self, gid: str, user: str, declare: bool, op: Op) -> tuple[Triage, Incident | None]:
        """Declare an incident from the group, or ignore it. The first decision wins (it is taken before
        anything is done): a second click, or the other button, is told what was decided."""
        current = await self._current(gid)
        verdict = f"{'declared' if declare else 'ignored'}:{user}:"
        ttl = None if declare else IGNORE_SECONDS
        kept = await self.alerts.remember(f"triage-decided:{gid}", verdict, ttl_seconds=ttl)
        if kept != verdict and not (op.recovering and kept.startswith(verdict)):
            taken = await self._current(gid)
            raise InvalidTransition(f"This alert group was {taken.decided} already by <@{taken.decided_by}>.")
        incident = None
        if declare:
            group_key = await self.alerts.recall(f"triage-group:{gid}") or gid
            hook = AlertmanagerWebhook.model_validate(
                {
                    "version": "4",
                    "groupKey": group_key,
                    "status": "firing",
                    "alerts": [current.alert.model_dump(by_alias=True, mode="json")],
                }
            )
            scope = current.alert.scope(self.rules.scope_labels)
            incident = await self.declare_from(hook, current.alert, scope, self.rules.default_severity, op)
            # Every alert of the group so far joins its timeline, not only the one it was declared from.
            waiting = await self.alerts.collected(f"triage:{gid}") or [current.alert]
            for alert in sorted(waiting, key=lambda a: a.starts_at):
                await self.attach(incident, hook, alert, alert.scope(self.rules.scope_labels), None)
            await self.alerts.put(f"triage-decided:{gid}", f"{verdict}{incident.id}")
        decided = await self._current(gid)
        await self._show(decided, op)
        return decided, incident
