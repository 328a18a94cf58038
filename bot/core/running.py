"""Running an approved mitigation as durable work: re-read the cluster, act only if nothing changed since the
plan, lock the targets, make each API call a recorded step, and report per object. A run found half done
after a crash is reported with what was and was not done, and never repeated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from bot.core.changes import change_incident
from bot.core.errors import ChatError, FirebreakError
from bot.core.jobs import Job, JobRunner, Op, TryLater
from bot.core.mitigating import Mitigating, make_plan
from bot.core.mitigation_records import EXPIRE_JOB, RUN_JOB, describe
from bot.core.playbook import Playbook, succeeded, unmet
from bot.core.ports import NamedCluster
from bot.core.publishing import channel_of
from bot.models import (
    ActiveMitigation,
    Incident,
    Mitigated,
    Mitigation,
    MitigationState,
    Outcome,
    Plan,
    Post,
    PostKind,
    Result,
    TimelineEvent,
)

log = logging.getLogger(__name__)

LOCK_SECONDS = 30.0
"""Target locks expire this long after their holder stops renewing them (it died)."""
PROGRESS_SECONDS = 2.0
"""The plan message shows progress at most this often."""
RECORDS_IN_FLIGHT = 16
"""Step records written to the store at once: a drain may have hundreds of evictions in flight (most of them
waiting out a budget), which must not take every connection of the store's pool."""


class Running(Mitigating):
    def runners(self) -> dict[str, JobRunner]:
        return {RUN_JOB: self.run_job, EXPIRE_JOB: self.expire_job}

    async def expire_job(self, job: Job, op: Op) -> None:
        p = job.payload
        await self.expire(int(p["incident_id"]), int(p["number"]), op, attempt=int(p.get("attempt", 0)))

    async def run_job(self, job: Job, op: Op) -> None:
        try:
            await self.run(int(job.payload["incident_id"]), int(job.payload["number"]), op)
        except ChatError as exc:
            if not exc.transient:
                raise
            raise TryLater(str(exc)) from exc  # keyed posts: the retry finds what went out

    async def run(self, incident_id: int, number: int, op: Op) -> None:
        m = await self.get(incident_id, number)
        incident = await self._incident(m)
        if m.state is MitigationState.RUNNING:
            await self._interrupted(incident, m, op)
        elif m.state is MitigationState.APPROVED:
            await self._start(incident, m, op)
        elif m.state.finished:
            await self._followups(incident, m, op)  # a repeat after the record was written: finish the rest

    async def _start(self, incident: Incident, m: Mitigation, op: Op) -> None:
        playbook = self.playbooks.get(m.playbook)
        params = playbook.params.model_validate(m.params)
        try:
            fresh = await make_plan(playbook, self.clusters, params, m.as_user)
        except FirebreakError as exc:
            await self._fail(incident, m, str(exc), op)
            return
        if fresh.fingerprint != m.plan.fingerprint:
            await self._supersede(incident, m, playbook, fresh, op)
            return
        cluster = await self.clusters.get(fresh.cluster)
        targets = [f"{fresh.cluster}/{c.target}" for c in fresh.writes] + [f"{fresh.cluster}/{x}" for x in fresh.locks]
        held = await self.mitigations.lock_targets(targets, op.key, LOCK_SECONDS)
        if held is not None:
            await self._fail(incident, m, f"Another run is changing {held} right now; request again after it.", op)
            return
        try:
            start = {"state": MitigationState.RUNNING, "started_at": self.clock(), "plan": fresh}
            m, _ = await self.change(m, lambda r: r.model_copy(update=start), op.sub("start"))
            await self.tell(m, "started", describe(fresh), op)
            await self.show(incident, m)
            async with self._renewing(targets, op):
                results = await self._steps(incident, m, playbook, cluster, op)
            await self._finish(incident, m, playbook, results, MitigationState.DONE, None, op)
        finally:
            await self.mitigations.unlock_targets(targets, op.key)

    async def _steps(
        self, incident: Incident, m: Mitigation, playbook: Playbook, cluster: NamedCluster, op: Op
    ) -> list[Result]:
        """Each change once, phase by phase: recorded as started before its call and with its result after,
        so a crash leaves exactly what was in flight. Progress is edited into the plan message as it goes."""
        changes = m.plan.changes
        results: dict[int, Result] = {}
        ok: set[str] = set()
        last_shown = asyncio.get_running_loop().time()

        records = asyncio.Semaphore(RECORDS_IN_FLIGHT)

        async def one(i: int, gate: asyncio.Semaphore) -> None:
            nonlocal last_shown
            async with gate:
                blocked = unmet(changes[i], ok)
                op.check()
                async with records:
                    await self.mitigations.step(m.incident_id, m.number, i, None)
                result = blocked or await playbook.attempt(cluster, changes[i], as_user=m.as_user)
                results[i] = result
                succeeded(ok, result)
                async with records:
                    await self.mitigations.step(m.incident_id, m.number, i, result)
                    await self._record_call(m, i, result, noop=changes[i].noop or blocked is not None, op=op)
            now = asyncio.get_running_loop().time()
            if now - last_shown >= PROGRESS_SECONDS:
                last_shown = now
                await self.show(incident, m.model_copy(update={"results": _ordered(results)}))

        for phase in sorted({c.phase for c in changes}):
            gate = asyncio.Semaphore(playbook.concurrency)
            # A task group, not gather: if one step fails unexpectedly (the store went away, the lease was
            # lost), the others stop before their next call instead of carrying on unrecorded.
            try:
                async with asyncio.TaskGroup() as group:
                    for i, c in enumerate(changes):
                        if c.phase == phase:
                            group.create_task(one(i, gate))
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None  # the worker decides on the first cause (lease, store)
        return [results[i] for i in range(len(changes))]

    async def _record_call(self, m: Mitigation, i: int, result: Result, *, noop: bool, op: Op) -> None:
        """Each API call, with its result, in the audit stream and the timeline (which shows a run's calls
        folded into one line; `/incident audit` lists them one by one)."""
        action = "skip" if noop else "call"
        detail = f"{result.target}: {result.outcome.value}" + (f": {result.message}" if result.message else "")
        await self.audit(
            m,
            action,
            op.part(f"call:{m.number}:{i}"),
            target=str(result.target),
            outcome=result.outcome.value,
            detail=result.message,
        )
        if noop:
            return  # no call was made: the audit says it was skipped, the timeline has only calls
        payload = Mitigated(number=m.number, playbook=m.playbook, action=action, text=detail)
        event = TimelineEvent(at=self.clock(), payload=payload)
        await self.store.append(m.incident_id, event, op.part(f"timeline:{m.number}:call:{i}"))

    @contextlib.asynccontextmanager
    async def _renewing(self, targets: list[str], op: Op) -> AsyncIterator[None]:
        async def renew() -> None:
            while True:
                await asyncio.sleep(LOCK_SECONDS / 3)
                if not await self.mitigations.renew_targets(targets, op.key, LOCK_SECONDS):
                    log.error("lost the target locks of %s; another run may touch the same objects", op.key)

        task = asyncio.create_task(renew(), name="firebreak:target-locks")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _interrupted(self, incident: Incident, m: Mitigation, op: Op) -> None:
        """The process running this died between steps: report what the steps say, repeat nothing."""
        steps = await self.mitigations.steps(m.incident_id, m.number)
        results, unknown, missing = [], 0, 0
        for i, change in enumerate(m.plan.changes):
            if i not in steps:
                missing += 1
                continue
            done = steps[i]
            if done is None:
                unknown += 1
                done = Result(target=change.target, outcome=Outcome.UNKNOWN, message="in flight when it stopped")
            results.append(done)
        made = sum(1 for r in results if r.outcome is not Outcome.UNKNOWN)
        reason = (
            "this run was cut off (firebreak stopped, or lost its store, mid-run): "
            f"{made} step(s) finished, {unknown} in flight (check those "
            f"objects), {missing} not started. Nothing is repeated; request it again to finish (a new plan skips "
            "what is already done)."
        )
        playbook = self.playbooks.get(m.playbook)
        targets = [f"{m.plan.cluster}/{c.target}" for c in m.plan.writes] + [
            f"{m.plan.cluster}/{x}" for x in m.plan.locks
        ]
        await self.mitigations.unlock_targets(targets, op.key)
        await self._finish(incident, m, playbook, results, MitigationState.INTERRUPTED, reason, op)

    async def _finish(
        self,
        incident: Incident,
        m: Mitigation,
        playbook: Playbook,
        results: list[Result],
        state: MitigationState,
        reason: str | None,
        op: Op,
    ) -> None:
        undo = playbook.undo_params(m.plan, results) if playbook.undo_with else None
        update = {"state": state, "results": results, "finished_at": self.clock(), "undo_params": undo}
        update["reason"] = reason
        m, _ = await self.change(m, lambda r: r.model_copy(update=update), op.sub("finish"))
        await self._followups(incident, m, op)

    async def _followups(self, incident: Incident, m: Mitigation, op: Op) -> None:
        """After the finish is recorded: timeline and audit, the incident's list of what is in force, and the
        result post. Each is idempotent, so a job resumed after a crash (or a Slack outage) does them all."""
        await self.tell(m, m.state.value, _tally(m) + (f" {m.reason}" if m.reason else ""), op)
        await self._mark_active(incident, m, self.playbooks.get(m.playbook), op)
        await self._report(incident, m, op)

    async def _mark_active(self, incident: Incident, m: Mitigation, playbook: Playbook, op: Op) -> None:
        """A lasting effect (a cordon, a paused sync) is listed on the incident until its undo has run."""
        adding = playbook.lasting and bool(m.undo_params) and m.undo_of is None  # an undo is never "in force"
        removing = (
            m.undo_of is not None
            and m.state is MitigationState.DONE  # an interrupted undo may have left steps never started
            and m.count(Outcome.FAILED) == 0
            and m.count(Outcome.UNKNOWN) == 0
        )
        if not adding and not removing:
            return
        label = f"{m.playbook} {_targets(m)} ({m.plan.cluster})"
        entry = ActiveMitigation(number=m.number, playbook=m.playbook, label=label, flag=playbook.flag)

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            active = [a for a in i.active if not (removing and a.number == m.undo_of)]
            if adding and all(a.number != m.number for a in active):
                active.append(entry)
            if tuple(active) == i.active:
                return None
            what = "now active" if adding else f"undid M{m.undo_of}"
            payload = Mitigated(number=m.number, playbook=m.playbook, action="active", text=f"{label}: {what}")
            return i.model_copy(update={"active": tuple(active)}), [TimelineEvent(at=self.clock(), payload=payload)]

        before = incident
        after, events = await change_incident(self.store, incident.id, change, op.sub("active"))
        if events is not None:
            await self.publisher.publish(before, after, op=op.sub("active"))

    async def _report(self, incident: Incident, m: Mitigation, op: Op) -> None:
        """The per-object result (with Undo when something can be undone), and the plan message's final state.
        Keyed, so a repeat finds what was posted; a Slack outage retries the job, which resumes here."""
        try:
            op.check()
            await self.chat.post(
                channel_of(incident),
                Post(kind=PostKind.MITIGATION_RESULT, incident=incident, mitigation=m),
                key=op.part(f"result{m.number}"),
                recover=True,
            )
            await self.show(incident, m, strict=True)
        except ChatError as exc:
            if exc.transient:
                raise TryLater(str(exc)) from exc
            log.warning("%s %s: could not post its result: %s", incident.ref, m.ref, exc)

    async def _fail(self, incident: Incident, m: Mitigation, reason: str, op: Op) -> None:
        update = {"state": MitigationState.FAILED, "reason": reason, "finished_at": self.clock()}
        m, _ = await self.change(m, lambda r: r.model_copy(update=update), op.sub("fail"))
        await self.tell(m, "failed", reason, op)
        await self.show(incident, m, strict=True)

    async def _supersede(self, incident: Incident, m: Mitigation, playbook: Playbook, fresh: Plan, op: Op) -> None:
        """The cluster changed since the plan people approved: ask again with the plan as things are now."""
        params = playbook.params.model_validate(m.params)
        try:
            new = await self.submit(
                incident, playbook, params, m.requester, op.sub("replan"), undo_of=m.undo_of, plan=fresh
            )
        except FirebreakError as exc:  # the requester may no longer ask for it (rules changed meanwhile)
            await self._fail(incident, m, f"The cluster changed since this plan, and it can't be re-planned: {exc}", op)
            return
        if m.undo_of is not None:  # the undo of the original is now the new request
            original = await self.get(m.incident_id, m.undo_of)
            await self.change(original, lambda r: r.model_copy(update={"undone_by": new.number}), op.sub("relink"))
        reason = f"The cluster changed since this plan was made; the new plan is {new.ref}, for approval."
        update = {"state": MitigationState.SUPERSEDED, "next_plan": new.number, "reason": reason}
        m, _ = await self.change(m, lambda r: r.model_copy(update=update), op.sub("superseded"))
        await self.tell(m, "superseded", reason, op)
        await self.show(incident, m, strict=True)


def _ordered(results: dict[int, Result]) -> list[Result]:
    return [results[i] for i in sorted(results)]


def _tally(m: Mitigation) -> str:
    counts = {o: m.count(o) for o in Outcome}
    line = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n)
    failed = [f"{r.target}: {r.message}" for r in m.results if r.outcome is Outcome.FAILED][:3]
    return (line or "nothing to do") + (f". Failed: {'; '.join(failed)}" if failed else "") + "."


def _targets(m: Mitigation) -> str:
    done = [r.target.name for r in m.results if r.outcome is Outcome.DONE]
    if len(done) <= 3:
        return ", ".join(done)
    return f"{len(done)} objects ({', '.join(done[:2])} …)"
