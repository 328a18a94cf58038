"""What changed, from Slack: `/incident changes [hours] [cluster=<context>]` lists the scope's rollouts, GitOps syncs
and split node pools; each line's button requests the matching playbook through the usual approval flow."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.core.config import IncidentConfig
from bot.core.errors import UsageError
from bot.core.what_changed import what_changed
from bot.models import MitigationState
from bot.render.replies import Reply
from bot.render.what_changed import CHANGE_ACTION, CHANGE_BUTTONS, changes_blocks, changes_text
from handlers.registry import CommandContext, HandlerTable, InteractionContext

handlers = HandlerTable()
DEFAULT_HOURS = 6.0
MAX_HOURS = 24.0 * 14
_CONTEXT = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.@:/]{0,252}")


@dataclass(frozen=True)
class ChangesArgs:
    hours: float
    cluster: str | None


def parse_changes(rest: str, config: IncidentConfig) -> ChangesArgs:
    hours, cluster = DEFAULT_HOURS, None
    for token in rest.split():
        if token.startswith("cluster="):
            cluster = token.removeprefix("cluster=")
            if not _CONTEXT.fullmatch(cluster):
                raise UsageError(f"{cluster!r} is not a kubeconfig context name.")
            continue
        try:
            hours = float(token)
        except ValueError:
            raise UsageError(
                f"Give the hours to look back (default 6) and optionally cluster=<context>, not {token!r}."
            ) from None
        if not 0 < hours <= MAX_HOURS:
            raise UsageError(f"Look back more than 0 and at most {MAX_HOURS:g} hours (got {token}).")
    return ChangesArgs(hours, cluster)


@handlers.subcommand(
    "changes",
    usage="changes [hours] [cluster=<context>]",
    summary="What changed in the scope (default the last 6 h): rollouts, GitOps syncs, node pools split by image.",
    parse=parse_changes,
)
async def changes(ctx: CommandContext, args: ChangesArgs) -> Reply:
    mitigation = ctx.service.mitigation
    cluster = await mitigation.clusters.get(args.cluster)
    found = await what_changed(
        cluster,
        cluster_name=cluster.name,
        scope=dict(ctx.target.scope),
        hours=args.hours,
        now=mitigation.clock(),
        pool_labels=ctx.config.mitigation.nodes.pool_labels,
    )
    blocks = changes_blocks(ctx.target.id, found, args.cluster, ctx.config.mitigation.nodes.max_nodes)
    return Reply(changes_text(found), blocks)


@handlers.action(CHANGE_ACTION, numbered=CHANGE_BUTTONS)
async def mitigate_change(ctx: InteractionContext, action: dict[str, Any]) -> Reply:
    """A change's button: request its playbook, as `/incident mitigate <playbook> <params>` would."""
    try:
        value = json.loads(action["value"])
        incident_id, playbook, params = int(value["incident"]), str(value["playbook"]), str(value["params"])
    except (ValueError, KeyError, TypeError):
        raise UsageError("That button carries no mitigation; nothing was done.") from None
    incident = await ctx.service.get(incident_id)
    m = await ctx.service.mitigation.request(incident, playbook, params, ctx.actor.id, ctx.op)
    if m.state is MitigationState.PENDING:
        return Reply(f"Plan {m.ref} (`{playbook} {params}`) posted in <#{incident.channel_id}> for approval.")
    if m.state is MitigationState.APPROVED:
        return Reply(f"{m.ref} needs no approval here; it runs now.")
    return Reply(f"{m.ref} can't run; its message in <#{incident.channel_id}> says why.")
