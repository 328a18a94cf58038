"""Alerts in: one incident per root cause. Each alert of a webhook is placed on the incident its alert, its group
or its scope already belongs to (or the one an inhibiting alert opened); otherwise routed: declare, triage or
ignore. Every occurrence is in the timeline; the channel gets one storm message, edited at most once a second.

Repeats change nothing: timeline entries, links and counts are keyed by the occurrence (fingerprint, startsAt,
status), which Alertmanager's resends and retries share.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from bot.core import alert_rules as rules
from bot.core.changes import get_incident
from bot.core.declaring import Declaring
from bot.core.deps import Deps, Verbs
from bot.core.errors import Busy, ChatError
from bot.core.jobs import Job, JobRunner, Op, TryLater
from bot.core.ports import AlertStore, JobQueue, LockKind, utcnow
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
NOTICE_JOB = "alert-notice"
DIGEST_EVERY_SECONDS = 1.0
DECIDE_LOCK_SECONDS = 60.0
"""Deciding covers a declare (channel, summary, announcement); a crashed holder's lock goes after this."""
DECIDE_ATTEMPTS = 500
DIGEST_LOCK_SECONDS = 180.0
"""A first post may wait for its channel's slot (pacing) and Slack's Retry-After."""
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
        return {ALERTS_JOB: self.run_job, DIGEST_JOB: self.digest_job, NOTICE_JOB: self.notice_job}

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
        if incident is not None:  # known already: no decision to make, no lock to take
            source = rules.inhibitor(self.rules, alert, firing)
            self._count("inhibited" if source is not None else "attached")
            await self.attach(incident, hook, alert, scope, source)
            return incident.id
        # Deciding where an unknown alert goes is one at a time across replicas: two webhooks of one root cause
        # (nested scopes, an inhibiting alert and its target) must see each other's incident, not open two.
        async with self._deciding(op):
            placed = await self._decide(hook, alert, scope, op)
        if placed is not None and placed[1]:  # a new incident: its channel and posts, outside the lock
            await self.declaring.provision(placed[0], op.sub(f"provision:{placed[0]}"), recover=True)
        return placed[0] if placed is not None else None

    async def _decide(
        self, hook: AlertmanagerWebhook, alert: Alert, scope: dict[str, str], op: Op
    ) -> tuple[int, bool] | None:
        """Where the alert goes: (incident, whether it was just declared), or None (triaged or ignored)."""
        incident = await self._open_linked(f"alert:{alert.identity}") or await self._open_linked(
            f"group:{hook.group_key}"
        )
        if incident is None and scope:
            incident = next((i for i in await self.store.list_open() if rules.related(i.scope, scope)), None)
        firing = [a for a in hook.alerts if a.status == "firing"]
        if self.rules.inhibit:
            firing += await self.alerts.firing()
        source = rules.inhibitor(self.rules, alert, firing)
        if incident is None and source is not None:
            incident = await self._open_linked(f"alert:{source.identity}")
            source = source if incident is not None else None  # explained only by an alert with an incident
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
            incident = await self.declare_from(hook, alert, scope, decision.severity, op, provision=False)
            outcome = "declared"
        self._count("inhibited" if source is not None else outcome)
        await self.attach(incident, hook, alert, scope, source)
        return incident.id, outcome == "declared"

    @contextlib.asynccontextmanager
    async def _deciding(self, op: Op) -> AsyncIterator[None]:
        owner = f"{op.key}:{uuid.uuid4().hex[:8]}"
        for _ in range(DECIDE_ATTEMPTS):
            try:
                lock = self.store.lock(LockKind.ALERTS, 0, owner, DECIDE_LOCK_SECONDS)
                await lock.__aenter__()
            except Busy:
                await asyncio.sleep(0.02)
                continue
            try:
                yield
            finally:
                await lock.__aexit__(None, None, None)
            return
        raise TryLater("another replica kept deciding where alerts go; trying again")

    async def _open_linked(self, key: str) -> Incident | None:
        incident_id = await self.alerts.incident_of(key)
        incident = await self.store.get(incident_id) if incident_id is not None else None
        return incident if incident is not None and incident.is_open else None

    async def declare_from(
        self,
        hook: AlertmanagerWebhook,
        alert: Alert,
        scope: dict[str, str],
        severity: int,
        op: Op,
        *,
        provision: bool = True,
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
            provision=provision,
        )
        return outcome.incident

    async def attach(
        self, incident: Incident, hook: AlertmanagerWebhook, alert: Alert, scope: dict[str, str], source: Alert | None
    ) -> None:
        await self.alerts.link(f"alert:{alert.identity}", incident.id)
        await self.alerts.link(f"group:{hook.group_key}", incident.id)
        over = await self.alerts.recall(f"resolved:{alert.identity}:{alert.starts_at.isoformat()}")
        await self.alerts.fire(incident.id, alert)  # and, if its resolve came first, resolved again below
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
        if over is not None:  # its resolve came first: it goes into the timeline now, after its firing
            await self._record_resolved(incident.id, Alert.model_validate_json(over))
        label = f"{alert.name} {scope_text(scope)}".strip() + (f" (explained by {source.name})" if source else "")
        await self.alerts.tally(f"incident:{incident.id}", alert.occurrence, label)
        for flag in flags:
            await self.alerts.tally(f"incident:{incident.id}", f"{alert.occurrence}|{flag}", f"lacks: {flag}")
            if added and self.metrics:
                self.metrics.alert_flags.labels(alert.name, flag).inc()

    async def _resolved(self, alert: Alert) -> int | None:
        # Kept, so that this occurrence's firing, arriving later (webhooks out of order, an HA peer's resend),
        # is recorded as over rather than firing for ever.
        over = alert.model_dump_json(by_alias=True)
        await self.alerts.remember(f"resolved:{alert.identity}:{alert.starts_at.isoformat()}", over)
        incident_id = await self.alerts.incident_of(f"alert:{alert.identity}")
        if incident_id is None:
            self._count("resolved_early")
            return None
        await self._record_resolved(incident_id, alert)
        return incident_id

    async def _record_resolved(self, incident_id: int, alert: Alert) -> None:
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

    async def _all_resolved(self, incident: Incident, last: Alert) -> None:
        """Tell the IC; a person resolves the incident once user-facing signals confirm recovery. Posted by a
        job of its own, so it waits for the channel of an incident still being set up."""
        event = TimelineEvent(at=self.clock(), actor=FIREBREAK, payload=Nudged(reason="every alert resolved"))
        key = f"alerts-resolved:{incident.id}:{last.occurrence}"
        if await self.store.append(incident.id, event, key):
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            payload = {"incident_id": incident.id, "key": key, "event": event.model_dump(mode="json")}
            job = Job(id=f"{NOTICE_JOB}:{digest}", kind=NOTICE_JOB, payload=payload, created_at=utcnow())
            await self.queue.enqueue(job, utcnow())

    async def notice_job(self, job: Job, op: Op) -> None:
        incident = await get_incident(self.store, int(job.payload["incident_id"]))
        if incident.channel_id is None:
            raise TryLater(f"INC-{incident.id} has no channel yet")
        event = TimelineEvent.model_validate(job.payload["event"])
        post = Post(kind=PostKind.EVENT, incident=incident, event=event)
        op.check()
        await self.chat.post(incident.channel_id, post, key=str(job.payload["key"]), recover=True)

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
            raise TryLater(f"INC-{incident.id} has no channel yet")  # being provisioned: show it once it has
        key = f"alert-digest:{incident.id}"
        try:
            # One storm message: a slow first post (paced, rate-limited) must not let the next second's job post
            # another. Whoever holds this posts or edits; the others run again a moment later.
            async with self.store.lock(LockKind.ALERT_DIGEST, incident.id, op.key, DIGEST_LOCK_SECONDS):
                counts = await self.alerts.tallies(f"incident:{incident.id}")
                post = Post(kind=PostKind.ALERTS, incident=incident, counts=counts)
                ts = await self.alerts.recall(key)
                if ts:
                    await self.chat.edit(incident.channel_id, ts, post)
                    return
                op.check()
                posted = await self.chat.post(incident.channel_id, post, key=key, recover=True)
                await self.alerts.remember(key, posted)
        except Busy:
            raise TryLater(f"INC-{incident.id}'s storm message is being posted") from None


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
