"""What the guide reads before it asks: the evidence panel's facts and the scope's recent changes, and the answers
they already give. A question the facts settle is answered by firebreak with its basis on the timeline; the IC can
always answer differently. A question they leave open is asked, with whatever the facts hint."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.errors import FirebreakError
from bot.core.evidence import EvidenceGathering
from bot.core.evidence_config import EvidenceConfig
from bot.core.guide import NO, YES, Answer, choices, next_question
from bot.core.ports import Clusters
from bot.core.what_changed import Change, Changes, PoolSplit, Rollout, what_changed
from bot.models import GuideAnswered, Incident, TimelineEvent
from bot.models.evidence import Evidence, Health, Layer

LOOKBACK_HOURS = 6.0
"""How far back a change counts as recent (the same default as `/incident changes`)."""
FACTS_SECONDS = 20.0
"""The most the guide waits for Prometheus and the cluster before it asks without them."""
BASIS_CHARS = 160
"""A basis travels in button values (Slack allows 2,000 characters); each is kept short."""
LAYER_ORDER = list(Layer)
"""From the user's request down: the deepest suspect layer is usually where a failure starts and the layers
above it only show its symptoms."""


@dataclass(frozen=True)
class Hint:
    """What the facts say to one question, and why."""

    answer: str
    basis: str


@dataclass
class Facts:
    evidence: Evidence | None = None
    changes: Changes | None = None
    notes: list[str] = field(default_factory=list)
    """Why a source is missing (not configured, unreachable)."""


def run_id(op_key: str) -> str:
    """A guide run's id, stable for one `/incident guide` (so a repeat of the request records nothing twice)."""
    return hashlib.sha256(op_key.encode()).hexdigest()[:10]


def run_events(events: Sequence[TimelineEvent], run: str) -> list[TimelineEvent]:
    """A run's answers in the order they were recorded (by version)."""
    found = [(e, e.payload) for e in events if isinstance(e.payload, GuideAnswered) and e.payload.guide == run]
    ordered = sorted(enumerate(found), key=lambda ip: ip[1][1].version if ip[1][1].version is not None else ip[0])
    return [e for _, (e, _) in ordered]


def answers_of(events: Sequence[TimelineEvent]) -> list[GuideAnswered]:
    return [e.payload for e in events if isinstance(e.payload, GuideAnswered)]


def asked(events: Sequence[TimelineEvent]) -> set[str]:
    """Questions a person answered in this run: the facts suggest for them but never answer them again."""
    return {e.payload.question for e in events if isinstance(e.payload, GuideAnswered) and e.actor.is_person}


def path_of(answers: Sequence[GuideAnswered]) -> tuple[Answer, ...]:
    """The path a run's answers make, in order: an answer to an earlier step replaces it and what followed."""
    path: list[Answer] = []
    for a in answers:
        step = len(path) if a.step is None else min(a.step, len(path))
        path = [*path[:step], Answer(a.question, a.answer, a.basis)]
    return tuple(path)


def _clip(text: str) -> str:
    return text if len(text) <= BASIS_CHARS else text[: BASIS_CHARS - 1] + "…"


def _impact(evidence: Evidence) -> Hint | None:
    slo = [s for s in evidence.signals if s.slo is not None]
    known = [s for s in slo if s.now.value is not None]
    missed = [s for s in known if s.now.value is not None and s.slo is not None and s.now.value < s.slo]
    if missed:
        said = "; ".join(
            f"{s.name} {s.now.value:.4g} below its SLO {s.slo:g}"
            + (f" (burn {s.burn_rate:.3g}x)" if s.burn_rate is not None else "")
            for s in missed
        )
        return Hint(YES, _clip(said))
    if known and len(known) == len(slo):
        return Hint(NO, _clip("every SLO signal meets its target now: " + ", ".join(s.name for s in known)))
    return None


def _layer(evidence: Evidence) -> Hint | None:
    suspect = [c for c in evidence.layers if c.health is Health.SUSPECT]
    if not suspect:
        return None
    deepest = max(suspect, key=lambda c: LAYER_ORDER.index(c.layer)).layer
    said = ", ".join(f"{c.layer.value} ({c.name})" for c in suspect)
    return Hint(deepest.value, _clip(f"suspect: {said}; the deepest is where it likely starts"))


def _saturation(evidence: Evidence, config: EvidenceConfig) -> Hint | None:
    marked = {c.name for c in config.checks if c.saturation or c.layer is Layer.DEPENDENCY}
    relevant = [c for c in evidence.layers if c.name in marked]
    suspect = [c for c in relevant if c.health is Health.SUSPECT]
    if suspect:
        return Hint(YES, _clip("past threshold: " + ", ".join(c.name for c in suspect)))
    if relevant and all(c.health is Health.HEALTHY for c in relevant):
        return Hint(NO, _clip("within threshold: " + ", ".join(c.name for c in relevant)))
    return None


def recent(changes: Changes) -> list[Change]:
    """Changes made within the window (a pool split that started before it is not recent)."""
    return [c for c in changes.items if not isinstance(c, PoolSplit) or c.appeared_in_window]


def _describe(change: Change) -> str:
    if isinstance(change, Rollout):
        return f"Deployment {change.namespace}/{change.deployment} revision {change.revision}"
    if isinstance(change, PoolSplit):
        return f"pool {change.pool} on a new node image"
    return f"{change.kind} {change.namespace}/{change.name} synced to {change.revision[:12]}"


def _change(changes: Changes) -> Hint:
    found = recent(changes)
    if found:
        said = "; ".join(_describe(c) for c in found[:3]) + (f"; {len(found) - 3} more" if len(found) > 3 else "")
        return Hint(YES, _clip(f"{len(found)} change(s) in the last {changes.hours:g} h: {said}"))
    where = f"namespace {changes.namespace}" + (f", service {changes.service}" if changes.service else "")
    return Hint(NO, _clip(f"no rollout, GitOps sync or node-image change in the last {changes.hours:g} h ({where})"))


def hints(facts: Facts, config: EvidenceConfig) -> dict[str, Hint]:
    """Each question the facts speak to, with the answer they give."""
    found: dict[str, Hint] = {}
    if facts.evidence is not None:
        for key, hint in (
            ("impact", _impact(facts.evidence)),
            ("layer", _layer(facts.evidence)),
            ("saturation", _saturation(facts.evidence, config)),
        ):
            if hint is not None:
                found[key] = hint
    if facts.changes is not None:
        found["change"] = _change(facts.changes)
    return found


def pre_answers(
    given: dict[str, Hint], path: tuple[Answer, ...] = (), answered: set[str] | None = None
) -> tuple[Answer, ...]:
    """The answers the facts settle after `path`, in order, up to the first question they leave open or that a
    person has answered in this run (asked again, with the facts' suggestion)."""
    answers: list[Answer] = []
    while (question := next_question((*path, *answers))) is not None:
        hint = given.get(question)
        if hint is None or hint.answer not in choices(question) or question in (answered or set()):
            break
        answers.append(Answer(question, hint.answer, hint.basis))
    return tuple(answers)


async def gather_facts(
    evidence: EvidenceGathering,
    clusters: Clusters | None,
    incident: Incident,
    *,
    now: datetime,
    pool_labels: tuple[str, ...],
    evidence_wanted: bool = True,
) -> Facts:
    """The evidence and the last hours' changes, concurrently; a source that is missing, failing or slow is left
    out with a note, and the guide asks instead."""
    facts = Facts()

    async def read_evidence() -> None:
        try:
            facts.evidence = await evidence.gather(incident)
        except FirebreakError as exc:
            facts.notes.append(f"evidence: {exc}")

    async def read_changes() -> None:
        if clusters is None:
            facts.notes.append("changes: no cluster is configured")
            return
        if "namespace" not in incident.scope:
            facts.notes.append("changes: the incident's scope names no namespace (`/incident changes` reads one)")
            return
        try:
            cluster = await clusters.get(incident.scope.get("cluster"))
            facts.changes = await what_changed(
                cluster,
                cluster_name=cluster.name,
                scope=dict(incident.scope),
                hours=LOOKBACK_HOURS,
                now=now,
                pool_labels=pool_labels,
            )
        except FirebreakError as exc:
            facts.notes.append(f"changes: {exc}")

    tasks = {"changes": read_changes(), **({"evidence": read_evidence()} if evidence_wanted else {})}
    done: set[str] = set()

    async def run(name: str, task: Coroutine[Any, Any, None]) -> None:
        await task
        done.add(name)

    try:
        async with asyncio.timeout(FACTS_SECONDS):
            await asyncio.gather(*(run(n, t) for n, t in tasks.items()))
    except TimeoutError:
        late = ", ".join(sorted(set(tasks) - done))
        facts.notes.append(f"{late}: no answer within {FACTS_SECONDS:g} s")
    return facts
