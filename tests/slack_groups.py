"""User groups for the Slack stand-in: usergroups.users.list, as approval rules that name a group use it."""

from __future__ import annotations

from typing import Any

from tests.slack_rules import SlackFailure


class UserGroups:
    """Mixed into SlackStandIn. Slack answers `no_such_subteam` for an unknown group id and lists a disabled
    group's users only with include_disabled; groups here are enabled."""

    groups: dict[str, set[str]]

    def add_group(self, group_id: str, users: set[str]) -> None:
        self.groups[group_id] = set(users)

    def m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group:
            raise SlackFailure("invalid_arguments")
        if group not in self.groups:
            raise SlackFailure("no_such_subteam")
        return {"users": sorted(self.groups[group])}
