"""The IC's guide from Slack: `/incident guide` reads the evidence and the recent changes, answers what they settle
(on the timeline as firebreak's, with the basis) and asks the rest; each button records the IC's answer and edits
the same message. A click from an older view of the guide (a double click, a second tab) records nothing and shows
the guide as it stands."""

from __future__ import annotations

import json
import shlex
from typing import Any

from bot.core.catalogue import catalogue, suggest
from bot.core.errors import UsageError
from bot.core.guide import YES, Answer, choices, next_question, question_text
from bot.core.guiding import (
    Facts,
    Hint,
    answers_of,
    asked,
    gather_facts,
    hints,
    path_of,
    pre_answers,
    run_events,
    run_id,
)
from bot.core.running import Running
from bot.models import FIREBREAK, Actor, GuideAnswered, Incident, TimelineEvent
from bot.render.guide import (
    MAX_PLAYBOOKS,
    PLAYBOOK_ACTION,
    REVISE_ACTION,
    Click,
    GuideView,
    answer_actions,
    decode,
    guide_blocks,
)
from bot.render.replies import Reply
from bot.render.views import mitigate_modal
from handlers.parsing import no_args
from handlers.registry import CommandContext, HandlerTable, InteractionContext

handlers = HandlerTable()
Context = CommandContext | InteractionContext
SCOPE_PARAMS = {"deployment": ("service", "app"), "namespace": ("namespace",), "pool": ("pool",)}
"""A playbook parameter the incident's scope fills in when a guide button opens the form: parameter to labels."""


def _running(ctx: Context) -> Running | None:
    try:
        return ctx.service.mitigation
    except UsageError:
        return None


def _prefills(ctx: Context, incident: Incident) -> dict[str, str]:
    """Every playbook (when playbooks are set up) with the parameters the scope gives it."""
    if _running(ctx) is None:
        return {}
    found = {}
    for playbook in ctx.service.playbooks:
        fields = playbook.params.model_fields
        given = [
            f"{name}={shlex.quote(value)}"
            for name, labels in SCOPE_PARAMS.items()
            if name in fields and (value := next((incident.scope[k] for k in labels if k in incident.scope), ""))
        ]
        found[playbook.name] = " ".join(given)
    return found


async def _facts(ctx: Context, incident: Incident, *, evidence: bool) -> Facts:
    running = _running(ctx)
    return await gather_facts(
        ctx.service.evidence,
        running.clusters if running else None,
        incident,
        now=ctx.service.evidence.clock(),
        pool_labels=ctx.config.mitigation.nodes.pool_labels,
        evidence_wanted=evidence,
    )


PRE_ANSWER_TRIES = 12
"""Each try records one of the (at most four) answers the facts settle, or finds its version taken by a
concurrent request and reads again."""


async def _events(ctx: Context, incident: Incident, run: str) -> list[TimelineEvent]:
    return run_events(await ctx.service.timeline(incident.id), run)


async def _record(ctx: Context, incident: Incident, run: str, version: int, step: int, a: Answer, by: Actor) -> bool:
    """One answer as this version of the run; False when the version was taken (by this click before, or another).
    The op key is the version: of two requests answering at once, exactly one is recorded."""
    payload = GuideAnswered(question=a.question, answer=a.answer, guide=run, step=step, basis=a.basis, version=version)
    event = TimelineEvent(at=ctx.service.evidence.clock(), actor=by, payload=payload)
    return await ctx.service.store.append(incident.id, event, f"guide:{incident.id}:{run}:v{version}")


async def _pre_answer(ctx: Context, incident: Incident, run: str, given: dict[str, Hint]) -> list[TimelineEvent]:
    """Record what the facts settle after the run's path, one version at a time; a version taken by a concurrent
    request (the other click of a double click) is read back and the path recomputed, so both end on one path."""
    for _ in range(PRE_ANSWER_TRIES):
        events = await _events(ctx, incident, run)
        path = path_of(answers_of(events))
        todo = pre_answers(given, path, asked(events))
        if not todo:
            return events
        await _record(ctx, incident, run, len(events), len(path), todo[0], FIREBREAK)
    return await _events(ctx, incident, run)


async def _reply(
    ctx: Context,
    incident: Incident,
    run: str,
    events: list[TimelineEvent],
    given: dict[str, Hint],
    *,
    facts: Facts | None = None,
    asking: int | None = None,
    stale: str | None = None,
) -> Reply:
    path = path_of(answers_of(events))
    shown = path if asking is None else path[:asking]
    if facts is None and any(a.question == "change" and a.answer == YES for a in shown):
        facts = await _facts(ctx, incident, evidence=False)  # the change buttons: one LIST per kind
    scenarios = catalogue(ctx.config.guide)
    view = GuideView(
        incident_id=incident.id,
        run=run,
        version=len(events),
        answers=shown,
        hints=given,
        suggested=suggest(scenarios, incident),
        scenarios=scenarios,
        evidence=ctx.config.evidence,
        playbooks=_prefills(ctx, incident),
        changes=facts.changes if facts else None,
        cluster=incident.scope.get("cluster"),
        max_nodes=ctx.config.mitigation.nodes.max_nodes,
        notes=facts.notes if facts else [],
        stale=stale,
    )
    return Reply(*guide_blocks(view), replace=isinstance(ctx, InteractionContext))


@handlers.subcommand(
    "guide",
    usage="guide",
    summary="Walk the decision tree (impact, layer, change, saturation, verify): what the evidence and recent "
    "changes settle is answered for you; your answers are recorded.",
    parse=no_args,
)
async def guide(ctx: CommandContext, _: None) -> Reply:
    incident = ctx.target
    run = run_id(ctx.op.key)
    facts = await _facts(ctx, incident, evidence=True)
    given = hints(facts, ctx.config.evidence)
    events = await _pre_answer(ctx, incident, run, given)
    return await _reply(ctx, incident, run, events, given, facts=facts)


def _click(action: dict[str, Any]) -> Click:
    try:
        return decode(str(action["value"]))
    except (ValueError, KeyError, TypeError):
        raise UsageError("That button carries no guide answer; nothing was recorded.") from None


def _taken(events: list[TimelineEvent], click: Click) -> bool | None:
    """Whether the click's version is taken: None (free), True (by this same answer: the click repeated, or its
    double), False (by another answer: the click came from an older view)."""
    if len(events) <= click.version:
        return None if len(events) == click.version else False
    p = events[click.version].payload
    assert isinstance(p, GuideAnswered)
    return p.step == click.step and p.answer == click.answer


def _moved_on(events: list[TimelineEvent], click: Click) -> str:
    later = answers_of(events)[click.version :]
    said = "; ".join(f"{question_text(p.question)} {p.answer}" for p in later[:3]) or "its answers changed"
    return (
        f"That button was from an older view of this guide, which has moved on since ({said}). "
        "Your click recorded nothing; here is the guide as it stands."
    )


async def guide_answer(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """One answer to the step the button was shown for (an earlier step: the IC answering differently), recorded
    once per click, then the facts answer what they settle after it."""
    click = _click(action)
    incident = await ctx.service.get(click.incident)
    events = await _events(ctx, incident, click.run)
    taken = _taken(events, click)
    if taken is None:
        path = path_of(answers_of(events))
        question = next_question(path[: click.step]) if click.step <= len(path) else None
        if question is None or click.answer not in choices(question):
            raise UsageError("That answer doesn't fit the guide's questions; nothing was recorded.")
        answer = Answer(question, click.answer)
        if not await _record(ctx, incident, click.run, click.version, click.step, answer, ctx.actor):
            events = await _events(ctx, incident, click.run)
            taken = _taken(events, click)
    if taken is False:
        return await _reply(ctx, incident, click.run, events, click.hints, stale=_moved_on(events, click))
    events = await _pre_answer(ctx, incident, click.run, click.hints)
    return await _reply(ctx, incident, click.run, events, click.hints)


for _action in answer_actions():
    handlers.action(_action)(guide_answer)


@handlers.action(REVISE_ACTION)
async def revise(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """ "Answer differently" on an answer firebreak gave: ask that step again (nothing is recorded until the IC
    answers; the answer then replaces that step and what followed)."""
    click = _click(action)
    incident = await ctx.service.get(click.incident)
    events = await _events(ctx, incident, click.run)
    if len(events) != click.version:
        return await _reply(ctx, incident, click.run, events, click.hints, stale=_moved_on(events, click))
    return await _reply(ctx, incident, click.run, events, click.hints, asking=click.step)


@handlers.action(PLAYBOOK_ACTION, numbered=MAX_PLAYBOOKS)
async def plan_playbook(ctx: InteractionContext, action: dict[str, Any]) -> None:
    """A guide's playbook button: the Mitigate form with the playbook chosen and the scope's parameters filled in,
    to check and submit (the plan then goes for approval as always)."""
    try:
        value = json.loads(action["value"])
        incident_id, playbook, params = int(value["i"]), str(value["p"]), str(value.get("params", ""))
    except (ValueError, KeyError, TypeError):
        raise UsageError("That button names no playbook; nothing was done.") from None
    incident = await ctx.service.get(incident_id)
    if not incident.is_open:
        raise UsageError(f"{incident.ref} is resolved; reopen it before mitigating.")
    known = ctx.service.mitigation.describe_playbooks()
    view = mitigate_modal(known, incident.channel_id or "", ctx.config.command, chosen=playbook, params=params)
    await ctx.client.views_open(trigger_id=action["trigger_id"], view=view)
