"""Mitigation requests: plan against the live cluster, post the plan, take approvals and rejections, expire,
and ask for the undo. Running an approved request is bot.core.running's."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.core import approvals
from bot.core.changes import change_incident, get_incident
from bot.core.deps import Deps
from bot.core.errors import ClusterError, FirebreakError, InvalidTransition, UsageError
from bot.core.jobs import Op
from bot.core.mitigation_records import Records, describe
from bot.core.playbook import Params, Playbook, PlaybookRegistry
from bot.core.ports import Clusters, JobQueue, LockKind, MitigationStore
from bot.core.publishing import Publisher
from bot.models import AuditEntry, Incident, Mitigated, Mitigation, MitigationState, Outcome, Plan, TimelineEvent

PLAN_SECONDS = 60.0
"""Reading the cluster and dry-running the writes must finish within this, or the request fails."""

UNDO_LOCK_SECONDS = 90.0
"""Planning an undo reads the cluster (up to PLAN_SECONDS); a crashed holder's lock goes after this."""


def still_undoing(undo: Mitigation) -> bool:
    """An undo that may yet run, or ran cleanly: asking again would double it. One that was rejected, expired,
    failed, or finished with objects failed or unknown may be asked for again (its plan skips what is done)."""
    if undo.state in (MitigationState.PENDING, MitigationState.APPROVED, MitigationState.RUNNING):
        return True
    clean = undo.count(Outcome.FAILED) == 0 and undo.count(Outcome.UNKNOWN) == 0
    return undo.state is MitigationState.DONE and clean


async def make_plan(playbook: Playbook, clusters: Clusters, params: Params, as_user: str | None) -> Plan:
    """The plan against the live cluster, with the API server's dry run of each write. Any failure to read
    the cluster fails the request with the reason: nothing is recorded or queued."""
    cluster = await clusters.get(params.cluster)
    try:
        async with asyncio.timeout(PLAN_SECONDS):
            plan = await playbook.plan(cluster, params, cluster_name=cluster.name)
            return plan if plan.refused else await playbook.check(cluster, plan, as_user=as_user)
    except ClusterError as exc:
        raise FirebreakError(f"Couldn't plan `{playbook.name}` on cluster {cluster.name}: {exc}") from None
    except TimeoutError:
        raise FirebreakError(
            f"Couldn't plan `{playbook.name}`: cluster {cluster.name} did not answer within {PLAN_SECONDS:g} s."
        ) from None


class Mitigating(Records):
    def __init__(
        self,
        deps: Deps,
        publisher: Publisher,
        playbooks: PlaybookRegistry,
        clusters: Clusters,
        mitigations: MitigationStore,
        queue: JobQueue,
    ) -> None:
        super().__init__(deps, mitigations, queue)
        self.publisher = publisher
        self.playbooks = playbooks
        self.clusters = clusters

    async def request(self, incident: Incident, name: str, text: str, requester: str, op: Op) -> Mitigation:
        """`/incident mitigate <playbook> key=value ...`: a usage mistake raises UsageError with the usage line."""
        if not incident.is_open:
            raise InvalidTransition(f"{incident.ref} is resolved; reopen it before mitigating.")
        playbook, params = self.playbooks.parse(name, text)
        return await self.submit(incident, playbook, params, requester, op)

    async def submit(
        self,
        incident: Incident,
        playbook: Playbook,
        params: Params,
        requester: str,
        op: Op,
        *,
        undo_of: int | None = None,
        plan: Plan | None = None,
    ) -> Mitigation:
        # An undo goes through the approval of what it undoes (undoing a drain is approved like a drain).
        ruled_by = (await self.get(incident.id, undo_of)).playbook if undo_of is not None else playbook.name
        rule = self.config.mitigation.rule(ruled_by)
        await approvals.check_requester(self.chat, requester, playbook.name, rule)
        as_user = self._impersonating(requester)
        plan = plan or await make_plan(playbook, self.clusters, params, as_user)
        now = self.clock()
        state = MitigationState.PENDING
        reason = None
        if plan.refused or plan.dry_run:
            state, reason = MitigationState.REFUSED, "; ".join([*plan.refused, *plan.dry_run])
        elif not plan.writes:
            state, reason = MitigationState.REFUSED, "Nothing to change: every object is already in that state."
        elif rule.approvals == 0:
            state = MitigationState.APPROVED
        draft = Mitigation(
            incident_id=incident.id,
            channel_id=incident.channel_id or "",
            playbook=playbook.name,
            params=params.model_dump(exclude_none=True, mode="json"),
            requester=requester,
            as_user=as_user,
            created_at=now,
            expires_at=now + timedelta(minutes=rule.expire_minutes),
            needed=rule.approvals,
            approvers=rule.approvers,
            self_approval=rule.self_approval,
            plan=plan,
            state=state,
            reason=reason,
            undo_of=undo_of,
        )
        m = await self.mitigations.create(draft, op.key)
        await self.tell(m, "requested", describe(m.plan), op, actor=requester)
        if m.state is MitigationState.REFUSED:
            await self.tell(m, "refused", m.reason or "", op)
            if undo_of is not None and not plan.writes and not plan.refused and not plan.dry_run:
                await self._undone_already(incident, undo_of, m, op)
        m = await self.post(incident, m, op)
        if m.state is MitigationState.PENDING:
            await self.queue_expiry(m)
        elif m.state is MitigationState.APPROVED:
            await self.queue_run(m)
        return m

    async def _undone_already(self, incident: Incident, original: int, m: Mitigation, op: Op) -> None:
        """An undo with nothing left to change (put back by hand, nodes deleted): the original is no longer
        in force."""

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            kept = tuple(a for a in i.active if a.number != original)
            if kept == i.active:
                return None
            text = f"M{original} is no longer in force: nothing was left to undo"
            payload = Mitigated(number=m.number, playbook=m.playbook, action="active", text=text)
            return i.model_copy(update={"active": kept}), [TimelineEvent(at=self.clock(), payload=payload)]

        after, events = await change_incident(self.store, incident.id, change, op.sub("not-in-force"))
        if events is not None:
            await self.publisher.publish(incident, after, op=op.sub("not-in-force"))

    def _impersonating(self, requester: str) -> str | None:
        mapping = self.config.mitigation.impersonate
        if not mapping:
            return None
        if requester not in mapping:
            raise UsageError(
                "Writes to the cluster act as the person who asked (impersonation), and you have no Kubernetes "
                "user in `mitigation.impersonate` (FIREBREAK_CONFIG). Ask your firebreak admin to add you."
            )
        return mapping[requester]

    async def approve(self, incident_id: int, number: int, user: str, op: Op) -> tuple[Mitigation, bool]:
        """Count `user`'s approval; once enough distinct people approved, queue the run. Whether it counted
        (False for a second click by the same person). A click whose approval was recorded before a crash
        finishes what followed it (the run is queued) rather than being refused as already decided."""
        if op.recovering and await self.mitigations.applied(incident_id, op.key):
            m, counted = await self.get(incident_id, number), True
        else:
            m = await self._decidable(incident_id, number)
            await self._allowed(m, user, op)
            now = self.clock()
            m, counted = await self.change(m, lambda r: approvals.approved(r, user, now), op)
        if counted:
            await self.tell(m, "approved", f"approval {len(m.approvals)} of {m.needed}", op, actor=user)
            await self.show(await self._incident(m), m)
        if m.state is MitigationState.APPROVED:
            await self.queue_run(m)  # idempotent: one run job per request, however many clicks
        return m, counted

    async def reject(self, incident_id: int, number: int, user: str, op: Op) -> Mitigation:
        if op.recovering and await self.mitigations.applied(incident_id, op.key):
            m = await self.get(incident_id, number)
        else:
            m = await self._decidable(incident_id, number)
            if user != m.requester:
                await self._allowed(m, user, op)
            now = self.clock()

            def decide(r: Mitigation) -> Mitigation:
                approvals.decidable(r, now)
                return r.model_copy(update={"state": MitigationState.REJECTED, "decided_by": user})

            m, _ = await self.change(m, decide, op)
        await self.tell(m, "rejected", "nothing was changed", op, actor=user)
        await self.show(await self._incident(m), m)
        return m

    async def _allowed(self, m: Mitigation, user: str, op: Op) -> None:
        """Refuse a decision the rule doesn't allow; the refusal is audited too."""
        try:
            await approvals.check_approver(self.chat, user, m)
        except UsageError as exc:
            await self.audit(m, "refused-decision", op.part(f"refused:{m.number}"), actor=user, detail=str(exc))
            raise

    async def _decidable(self, incident_id: int, number: int) -> Mitigation:
        """The request, if it can still be decided; an expired one is marked so (and its buttons go) first."""
        m = await self.get(incident_id, number)
        if m.state is MitigationState.PENDING and self.clock() >= m.expires_at:
            await self.expire(incident_id, number, Op(f"expire:{m.key}"))
            m = await self.get(incident_id, number)
        approvals.decidable(m, self.clock())
        return m

    async def expire(self, incident_id: int, number: int, op: Op, *, attempt: int = 0) -> None:
        """The expiry job (or a late click): a request still pending past its time can no longer run."""
        m = await self.get(incident_id, number)
        if m.state is MitigationState.EXPIRED:  # an edit that failed before: the buttons must still go
            await self.show(await self._incident(m), m, strict=True)
            return
        if m.state is not MitigationState.PENDING:
            return
        if self.clock() < m.expires_at:  # the queue's clock ran ahead: look again when it is really due
            await self.queue_expiry(m, attempt=attempt + 1)
            return

        def decide(r: Mitigation) -> Mitigation | None:
            if r.state is not MitigationState.PENDING:
                return None
            return r.model_copy(update={"state": MitigationState.EXPIRED})

        m, changed = await self.change(m, decide, op)
        if changed:
            await self.tell(m, "expired", f"not approved by {m.expires_at:%H:%M} UTC", op)
        await self.show(await self._incident(m), m, strict=True)

    async def request_undo(self, incident_id: int, number: int, requester: str, op: Op) -> Mitigation:
        """Ask to reverse exactly what a run did; the undo is a request of its own, with the same approval.
        One at a time per incident (a lock), so a double click makes one undo request, not two."""
        async with self.store.lock(LockKind.UNDO, incident_id, op.key, UNDO_LOCK_SECONDS):
            original = await self.get(incident_id, number)
            playbook = self.playbooks.get(original.playbook)
            if not original.state.finished or not original.undo_params or playbook.undo_with is None:
                raise UsageError(f"{original.ref} changed nothing that firebreak can undo.")
            if original.undone_by is not None:
                earlier = await self.get(incident_id, original.undone_by)
                if still_undoing(earlier):
                    raise InvalidTransition(
                        f"The undo of {original.ref} was asked for already: {earlier.ref} ({earlier.state.value})."
                    )
            undo = self.playbooks.get(playbook.undo_with)
            params = undo.params.model_validate(original.undo_params)
            incident = await self._incident(original)
            m = await self.submit(incident, undo, params, requester, op.sub("undo"), undo_of=original.number)

            def link(r: Mitigation) -> Mitigation | None:
                return None if r.undone_by == m.number else r.model_copy(update={"undone_by": m.number})

            await self.change(original, link, op.sub("link"))
            return m

    async def of_incident(self, incident_id: int) -> list[Mitigation]:
        return await self.mitigations.of_incident(incident_id)

    async def audit_log(self, incident_id: int, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        return await self.mitigations.audit_log(incident_id, limit=limit, before=before)

    async def _incident(self, m: Mitigation) -> Incident:
        return await get_incident(self.store, m.incident_id)

    def describe_playbooks(self) -> list[tuple[str, str, str]]:
        """(name, summary, usage) of every playbook, for the list and the modal."""
        return [(p.name, p.summary, p.usage) for p in self.playbooks]

    def parse(self, name: str, text: str) -> tuple[Playbook, Any]:
        return self.playbooks.parse(name, text)
