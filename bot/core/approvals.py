"""Who may ask for a playbook, who may approve it, and whether a request has the approvals it needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.core.config import ApprovalRule
from bot.core.errors import InvalidTransition, UsageError
from bot.core.ports import Chat
from bot.models import Approval, Mitigation, MitigationState


def _mentions(ids: Iterable[str]) -> str:
    return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)


async def is_among(chat: Chat, user: str, allowed: Iterable[str]) -> bool:
    """Whether `user` is one of `allowed`, directly or through a user group (asked only when needed)."""
    allowed = tuple(allowed)
    if user in allowed:
        return True
    for group in (a for a in allowed if a.startswith("S")):
        if user in await chat.group_members(group):
            return True
    return False


async def check_requester(chat: Chat, user: str, playbook: str, rule: ApprovalRule) -> None:
    if rule.requesters and not await is_among(chat, user, rule.requesters):
        raise UsageError(f"Only {_mentions(rule.requesters)} may request `{playbook}` (FIREBREAK_CONFIG).")


async def check_approver(chat: Chat, user: str, m: Mitigation) -> None:
    """Refuse an approval that may not count: the requester's own (two-person rule), or someone the rule
    does not name. Checked before the record changes, so a refused click changes nothing."""
    if user == m.requester and not m.self_approval:
        raise UsageError(
            f"You asked for {m.ref}, so someone else must approve it (two-person rule). "
            + (f"Approvers: {_mentions(m.approvers)}." if m.approvers else "Anyone else in the channel can.")
        )
    if m.approvers and not await is_among(chat, user, m.approvers):
        raise UsageError(f"Only {_mentions(m.approvers)} may approve `{m.playbook}` requests (FIREBREAK_CONFIG).")


def decidable(m: Mitigation, now: datetime) -> None:
    """A request can take an approval or a rejection only while it is pending and not expired."""
    if m.state is MitigationState.PENDING and now >= m.expires_at:
        raise InvalidTransition(f"{m.ref} expired at {m.expires_at:%H:%M} UTC; request it again to re-plan.")
    if m.state is not MitigationState.PENDING:
        raise InvalidTransition(f"{m.ref} is {m.state.value}; its buttons no longer act.")


def approved(m: Mitigation, user: str, now: datetime) -> Mitigation | None:
    """The request with `user`'s approval added (approved once enough distinct people approved), or None
    when that person's approval is counted already (a double click)."""
    decidable(m, now)
    if any(a.user == user for a in m.approvals):
        return None
    approvals = [*m.approvals, Approval(user=user, at=now)]
    state = MitigationState.APPROVED if len(approvals) >= m.needed else MitigationState.PENDING
    return m.model_copy(update={"approvals": approvals, "state": state})
