"""Alerts in: one incident per root cause. Each alert of a webhook is placed on the incident its alert, its group
or its scope already belongs to (or the one an inhibiting alert opened); otherwise routed: declare, triage or
ignore. Every occurrence is in the timeline; the channel gets one storm message, edited at most once a second.

Repeats change nothing: timeline entries, links and counts are keyed by the occurrence (fingerprint, startsAt,
status), which Alertmanager's resends and retries share.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from bot.core import alert_rules as rules
from bot.core.changes import get_incident
from bot.core.declaring import Declaring
from bot.core.deps import Deps, Verbs
from bot.core.errors import ChatError
from bot.core.jobs import Job, JobRunner, Op, TryLater
from bot.core.ports import AlertStore, JobQueue, utcnow
from bot.core.publishing import channel_of
from bot.models import (
    FIREBREAK,
    MAX_TITLE,
    Actor,
    Alert,
    Alerted,
    AlertmanagerWebhook,
    AlertOrigin,
    Incident,
    Nudged,
    Post,
    PostKind,
    TimelineEvent,
)

log = logging.getLogger(__name__)

ALERTS_JOB = "alerts"
DIGEST_JOB = "alert-digest"
DIGEST_EVERY_SECONDS = 1.0
"""Slack allows about one message per second per channel: the storm message is edited no more often."""


def scope_text(scope: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(scope.items()))


class Alerting(Verbs):
    def __init__(
        self,
        deps: Deps,
        declaring: Declaring,
        alerts: AlertStore,
        queue: JobQueue,
        *,
        triage_channel: str | None = None,
    ) -> None:
        super().__init__(deps)
        self.declaring = declaring
        self.alerts = alerts
        self.queue = queue
        self.rules = deps.config.alerts
        self.triage_channel = triage_channel

    async def triage(self, hook: AlertmanagerWebhook, alert: Alert) -> None:
        """Offer the alert's group to a person (bot.core.triaging); here, with no triage, nothing."""

    def runners(self) -> dict[str, JobRunner]:
        return {ALERTS_JOB: self.run_job, DIGEST_JOB: self.digest_job}

    async def run_job(self, job: Job, op: Op) -> None:
        try:
            await self.ingest(AlertmanagerWebhook.model_validate(job.payload), op)
        except ChatError as exc:
            if not exc.transient:
                raise
            raise TryLater(str(exc)) from exc  # every step is keyed by the occurrence: the retry repeats nothing

    async def ingest(self, hook: AlertmanagerWebhook, op: Op) -> list[int]:
        """Place every alert of the webhook; the incidents touched (their storm messages are refreshed)."""
        firing = [a for a in hook.alerts if a.status == "firing"]
        if self.rules.inhibit:
            firing += await self.alerts.firing()
        touched: list[int] = []
        for alert in hook.alerts:
            placed = await self._place(hook, alert, firing, op)
            if placed is not None and placed not in touched:
                touched.append(placed)
        for incident_id in touched:
            await self._queue_digest(incident_id)
        return touched

    async def _place(self, hook: AlertmanagerWebhook, alert: Alert, firing: list[Alert], op: Op) -> int | None:
        if alert.status == "resolved":
            return await self._resolved(alert)
        scope = alert.scope(self.rules.scope_labels)
        incident = await self._open_linked(f"alert:{alert.identity}") or await self._open_linked(
            f"group:{hook.group_key}"
        )
        if incident is None and scope:
            incident = next((i for i in await self.store.list_open() if rules.covers(i.scope, scope)), None)
        source = rules.inhibitor(self.rules, alert, firing)
        if incident is None and source is not None:
            incident = await self._open_linked(f"alert:{source.identity}")
        outcome = "attached"
        if incident is None:
            decision = rules.route(self.rules, alert, triage=self.triage_channel is not None)
            if decision.action is rules.Action.TRIAGE:
                await self.triage(hook, alert)
                self._count("triaged")
                return None
            if decision.action is not rules.Action.DECLARE:
                self._count("ignored")
                return None
            incident = await self.declare_from(hook, alert, scope, decision.severity, op)
            outcome = "declared"
        self._count("inhibited" if source is not None else outcome)
        await self.attach(incident, hook, alert, scope, source)
        return incident.id

    async def _open_linked(self, key: str) -> Incident | None:
        incident_id = await self.alerts.incident_of(key)
        incident = await self.store.get(incident_id) if incident_id is not None else None
        return incident if incident is not None and incident.is_open else None

    async def declare_from(
        self, hook: AlertmanagerWebhook, alert: Alert, scope: dict[str, str], severity: int, op: Op
    ) -> Incident:
        """The incident for this root cause: its scope if the alert names one, else its Alertmanager group.
        Concurrent webhooks of one root cause get the same incident (the binding is atomic)."""
        root = f"scope:{scope_text(scope)}" if scope else f"group:{hook.group_key}"
        where = f" ({scope_text(scope)})" if scope else ""
        title = (alert.summary + where)[:MAX_TITLE]
        extra: dict[str, object] = {
            "scope": scope,
            "impact_started_at": alert.starts_at,
            "origin": AlertOrigin.of(alert),
        }
        outcome = await self.declaring.declare(
            title=title,
            actor=Actor.alert(alert.identity, alert.name),
            severity=severity,
            description=alert.annotations.get("description", ""),
            op=op.sub(f"declare:{root}"),
            binding=root,
            extra=extra,
        )
        return outcome.incident

    async def attach(
        self, incident: Incident, hook: AlertmanagerWebhook, alert: Alert, scope: dict[str, str], source: Alert | None
    ) -> None:
        await self.alerts.link(f"alert:{alert.identity}", incident.id)
        await self.alerts.link(f"group:{hook.group_key}", incident.id)
        await self.alerts.fire(incident.id, alert)
        flags = rules.quality(self.rules, alert)
        payload = Alerted(
            name=alert.name,
            status="firing",
            fingerprint=alert.identity,
            summary=alert.summary,
            scope=scope,
            starts_at=alert.starts_at,
            flags=flags,
            inhibited_by=source.name if source is not None else None,
        )
        actor = Actor.alert(alert.identity, alert.name)
        added = await self.store.append(
            incident.id, TimelineEvent(at=alert.starts_at, actor=actor, payload=payload), f"alert:{alert.occurrence}"
        )
        label = f"{alert.name} {scope_text(scope)}".strip() + (f" (explained by {source.name})" if source else "")
        await self.alerts.tally(f"incident:{incident.id}", alert.occurrence, label)
        for flag in flags:
            await self.alerts.tally(f"incident:{incident.id}", f"{alert.occurrence}|{flag}", f"lacks: {flag}")
            if added and self.metrics:
                self.metrics.alert_flags.labels(alert.name, flag).inc()

    async def _resolved(self, alert: Alert) -> int | None:
        incident_id = await self.alerts.incident_of(f"alert:{alert.identity}")
        if incident_id is None:
            self._count("ignored")
            return None
        incident = await get_incident(self.store, incident_id)
        payload = Alerted(
            name=alert.name,
            status="resolved",
            fingerprint=alert.identity,
            summary=alert.summary,
            scope=alert.scope(self.rules.scope_labels),
            starts_at=alert.starts_at,
        )
        at = alert.ends_at or self.clock()
        event = TimelineEvent(at=at, actor=Actor.alert(alert.identity, alert.name), payload=payload)
        await self.store.append(incident_id, event, f"alert:{alert.occurrence}")
        self._count("resolved")
        left = await self.alerts.resolve(incident_id, alert)
        if left == 0 and incident.is_open:
            await self._all_resolved(incident, alert)
        return incident_id

    async def _all_resolved(self, incident: Incident, last: Alert) -> None:
        """Tell the IC; a person resolves the incident once user-facing signals confirm recovery."""
        event = TimelineEvent(at=self.clock(), actor=FIREBREAK, payload=Nudged(reason="every alert resolved"))
        key = f"alerts-resolved:{incident.id}:{last.occurrence}"
        if await self.store.append(incident.id, event, key):
            post = Post(kind=PostKind.EVENT, incident=incident, event=event)
            await self.chat.post(channel_of(incident), post, key=key, recover=True)

    def _count(self, outcome: str) -> None:
        if self.metrics:
            self.metrics.alerts.labels(outcome).inc()

    # ---- the storm message ----------------------------------------------------------------------------------

    async def _queue_digest(self, incident_id: int) -> None:
        now = utcnow()
        bucket = int(now.timestamp() / DIGEST_EVERY_SECONDS)
        job = Job(
            id=f"{DIGEST_JOB}:{incident_id}:{bucket}",
            kind=DIGEST_JOB,
            payload={"incident_id": incident_id},
            created_at=now,
        )
        await self.queue.enqueue(job, now + timedelta(seconds=DIGEST_EVERY_SECONDS))

    async def digest_job(self, job: Job, op: Op) -> None:
        """Post the storm message once, then edit it: one Slack call per incident per second, however many
        alerts came in that second."""
        incident = await get_incident(self.store, int(job.payload["incident_id"]))
        if incident.channel_id is None:
            return
        post = Post(
            kind=PostKind.ALERTS, incident=incident, counts=await self.alerts.tallies(f"incident:{incident.id}")
        )
        key = f"alert-digest:{incident.id}"
        ts = await self.alerts.recall(key)
        if ts:
            await self.chat.edit(incident.channel_id, ts, post)
            return
        op.check()
        posted = await self.chat.post(incident.channel_id, post, key=key, recover=True)
        await self.alerts.remember(key, posted)


def webhook_job(hook: AlertmanagerWebhook, body: bytes, now: datetime) -> Job:
    """The durable job a webhook becomes before it is answered; its id is the body's hash, so Alertmanager's
    retry of the very same POST is recorded once."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Job(
        id=f"{ALERTS_JOB}:{digest}",
        kind=ALERTS_JOB,
        payload=hook.model_dump(mode="json", by_alias=True),
        created_at=now,
    )
