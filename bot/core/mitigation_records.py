"""What every mitigation verb does around its decision: compare-and-set the request, show it, tell the timeline
and the audit stream, and queue what runs later. Each side effect is keyed by the op, so a retry repeats none."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.changes import atomically
from bot.core.deps import Deps, Verbs
from bot.core.errors import ChatError, NotFound
from bot.core.jobs import Job, Op
from bot.core.ports import JobQueue, MitigationStore, utcnow
from bot.core.publishing import channel_of
from bot.models import (
    FIREBREAK,
    Actor,
    AuditEntry,
    Incident,
    Mitigated,
    Mitigation,
    Plan,
    Post,
    PostKind,
    TimelineEvent,
)

log = logging.getLogger(__name__)

RUN_JOB = "mitigation-run"
EXPIRE_JOB = "mitigation-expire"

Decide = Callable[[Mitigation], Mitigation | None]


def describe(plan: Plan) -> str:
    """A plan in one plain line, for the timeline and the audit."""
    writes, already = len(plan.writes), len(plan.changes) - len(plan.writes)
    targets = ", ".join(str(c.target) for c in plan.writes[:3]) + (" …" if writes > 3 else "")
    line = f"{plan.playbook} on {plan.cluster}: {writes} change(s)" + (f" ({targets})" if targets else "")
    if already:
        line += f", {already} already so"
    if plan.refused:
        line += f"; refused: {plan.refused[0]}"
    return line


class Records(Verbs):
    def __init__(self, deps: Deps, mitigations: MitigationStore, queue: JobQueue) -> None:
        super().__init__(deps)
        self.mitigations = mitigations
        self.queue = queue

    async def get(self, incident_id: int, number: int) -> Mitigation:
        found = await self.mitigations.get(incident_id, number)
        if found is None:
            raise NotFound(f"INC-{incident_id} has no mitigation request M{number}.")
        return found

    async def change(self, m: Mitigation, decide: Decide, op: Op) -> tuple[Mitigation, bool]:
        """Apply `decide` with compare-and-set (a lost race re-reads and decides again); whether it changed."""
        written, events = await atomically(
            lambda: self.get(m.incident_id, m.number),
            lambda record, _: self.mitigations.save(record, op.key),
            lambda record: (lambda d: (d, [True]) if d is not None else None)(decide(record)),
            hint=m,
            busy=f"{m.ref} is being decided by several people at once; try again in a moment.",
        )
        return written, events is not None

    async def post(self, incident: Incident, m: Mitigation, op: Op) -> Mitigation:
        """Post the request's message once (keyed) and remember where it is."""
        op.check()
        ts = await self.chat.post(
            channel_of(incident),
            Post(kind=PostKind.MITIGATION, incident=incident, mitigation=m),
            key=op.part(f"mitigation{m.number}"),
            recover=op.recovering,
        )
        if m.message_ts == ts:
            return m
        written, _ = await self.change(m, lambda r: r.model_copy(update={"message_ts": ts}), op.sub("posted"))
        return written

    async def show(self, incident: Incident, m: Mitigation, *, strict: bool = False) -> None:
        """Edit the request's message to its current state (no live buttons once it can't be decided).

        Best effort unless `strict`: the record is the truth, and the next edit shows it."""
        if not m.message_ts:
            return
        try:
            post = Post(kind=PostKind.MITIGATION, incident=incident, mitigation=m)
            await self.chat.edit(channel_of(incident), m.message_ts, post)
        except ChatError as exc:
            if strict and exc.transient:
                raise
            log.warning("%s %s: could not edit its message: %s", incident.ref, m.ref, exc)

    async def tell(
        self, m: Mitigation, action: str, text: str, op: Op, *, actor: str | None = None, timeline: bool = True
    ) -> None:
        """One step, in the timeline (the facts in a line) and the audit stream, once per op."""
        now = self.clock()
        who = Actor.user(actor) if actor else FIREBREAK
        if timeline:
            payload = Mitigated(number=m.number, playbook=m.playbook, action=action, text=text)
            event = TimelineEvent(at=now, actor=who, payload=payload)
            await self.store.append(m.incident_id, event, op.part(f"timeline:{m.number}:{action}"))
        await self.audit(m, action, op.part(f"audit:{m.number}:{action}"), actor=actor, detail=text, at=now)

    async def audit(
        self,
        m: Mitigation,
        action: str,
        key: str,
        *,
        actor: str | None = None,
        target: str = "",
        outcome: str = "",
        detail: str = "",
        at: datetime | None = None,
    ) -> None:
        entry = AuditEntry(
            at=at or self.clock(),
            incident_id=m.incident_id,
            number=m.number,
            actor=actor or "firebreak",
            action=action,
            playbook=m.playbook,
            cluster=m.plan.cluster,
            target=target,
            outcome=outcome,
            detail=detail,
        )
        await self.mitigations.audit(entry, key)

    async def queue_run(self, m: Mitigation) -> None:
        job = Job(
            id=f"{RUN_JOB}:{m.key}",
            kind=RUN_JOB,
            payload={"incident_id": m.incident_id, "number": m.number},
            created_at=utcnow(),
        )
        await self.queue.enqueue(job, utcnow())

    async def queue_expiry(self, m: Mitigation, *, attempt: int = 0) -> None:
        """Remove the buttons when the request expires, even if nobody clicks again. The queue runs on the
        wall clock; the request's expiry is on the incident clock (the same one, outside tests)."""
        due = utcnow() + (m.expires_at - self.clock()) + timedelta(seconds=attempt)
        job = Job(
            id=f"{EXPIRE_JOB}:{m.key}:{attempt}",
            kind=EXPIRE_JOB,
            payload={"incident_id": m.incident_id, "number": m.number, "attempt": attempt},
            created_at=utcnow(),
        )
        await self.queue.enqueue(job, due)
