"""The IC's guide from Slack: `/incident guide` asks the decision tree's first question; each button records the
answer on the timeline and edits the same message to show the path and the next question."""

from __future__ import annotations

from typing import Any

from bot.core.catalogue import catalogue, suggest
from bot.core.errors import UsageError
from bot.core.guide import Answer, next_question, valid
from bot.models import GuideAnswered, Incident, TimelineEvent
from bot.render.guide import answer_actions, decode, guide_blocks
from bot.render.replies import Reply
from handlers.parsing import no_args
from handlers.registry import CommandContext, HandlerTable, InteractionContext

handlers = HandlerTable()


def _message(incident: Incident, answers: tuple[Answer, ...], ctx: CommandContext | InteractionContext) -> Reply:
    config = ctx.config
    scenarios = catalogue(config.guide)
    text, blocks = guide_blocks(incident.id, answers, suggest(scenarios, incident), scenarios, config.evidence)
    return Reply(text, blocks)


@handlers.subcommand(
    "guide",
    usage="guide",
    summary="Walk the decision tree (impact, layer, change, saturation, verify) with buttons; answers are recorded.",
    parse=no_args,
)
async def guide(ctx: CommandContext, _: None) -> Reply:
    return _message(ctx.target, (), ctx)


async def guide_answer(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """One answer: recorded on the timeline (once per click), then the message shows the path so far."""
    try:
        incident_id, path, answer = decode(str(action["value"]))
    except (ValueError, KeyError, TypeError):
        raise UsageError("That button carries no guide answer; nothing was recorded.") from None
    incident = await ctx.service.get(incident_id)
    question = next_question(path)
    answers = (*path, Answer(question, answer)) if question else path
    if question is None or not valid(answers):
        raise UsageError("That answer doesn't fit the guide's questions; nothing was recorded.")
    event = TimelineEvent(
        at=ctx.service.evidence.clock(), actor=ctx.actor, payload=GuideAnswered(question=question, answer=answer)
    )
    await ctx.service.store.append(incident.id, event, ctx.op.part("guide"))
    reply = _message(incident, answers, ctx)
    return Reply(reply.text, reply.blocks, replace=True)


for _action in answer_actions():
    handlers.action(_action)(guide_answer)
