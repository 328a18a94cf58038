"""RBAC rules as the Kubernetes API server's RBAC authorizer matches them, so the stand-in can grant exactly a
ClusterRole's rules (KubeStandIn.enforce_rbac) and a test can prove a role in deploy/ is enough, and no more.

Each rule copies the real authorizer (plugin/pkg/auth/authorizer/rbac/rbac.go, RuleAllows, with the matchers of
pkg/apis/rbac/v1/evaluation_helpers.go):
- a request is allowed when any one rule allows it; there is no deny rule, so anything no rule names is denied;
- verbs and apiGroups match exactly, or `*` matches any;
- a resource with a subresource is checked as `resource/subresource`: `pods` does not grant `pods/eviction`;
  `*` matches anything and `*/eviction` any resource's eviction subresource;
- resourceNames, when a rule has them, must include the request's name: a request with no name (a list, a create
  of a new object) never matches such a rule;
- the impersonation filter asks for verb `impersonate` on `users` in the core group, named after the user.
A ClusterRole bound by a ClusterRoleBinding applies in every namespace, so the namespace is not matched here.
Not modelled: nonResourceURLs, aggregation rules, RoleBindings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """One PolicyRule of a ClusterRole."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Rule:
        """From the YAML/JSON shape (`apiGroups`, `resources`, `verbs`, `resourceNames`)."""
        return cls(
            verbs=tuple(rule.get("verbs") or ()),
            api_groups=tuple(rule.get("apiGroups") or ()),
            resources=tuple(rule.get("resources") or ()),
            resource_names=tuple(rule.get("resourceNames") or ()),
        )

    def allows(self, verb: str, group: str, resource: str, name: str) -> bool:
        return (
            _matches(self.verbs, verb)
            and _matches(self.api_groups, group)
            and _resource_matches(self.resources, resource)
            and (not self.resource_names or name in self.resource_names)
        )

    def grants(self) -> set[tuple[str, str, str]]:
        """Every (verb, group, resource) this rule names; a wildcard names no finite set, so it is refused."""
        named = [*self.verbs, *self.api_groups, *self.resources]
        if any("*" in part for part in named):
            raise ValueError(f"rule {self} uses a wildcard: it grants whatever exists now or is added later")
        return {(v, g, r) for v in self.verbs for g in self.api_groups for r in self.resources}


def _matches(allowed: tuple[str, ...], wanted: str) -> bool:
    return "*" in allowed or wanted in allowed


def _resource_matches(allowed: tuple[str, ...], wanted: str) -> bool:
    """ResourceMatches: `wanted` is `resource` or `resource/subresource`, as the request info combines them."""
    if "*" in allowed or wanted in allowed:
        return True
    _, slash, sub = wanted.partition("/")
    return bool(slash) and f"*/{sub}" in allowed


def allowed(rules: Iterable[Rule], verb: str, group: str, resource: str, name: str) -> bool:
    return any(rule.allows(verb, group, resource, name) for rule in rules)


@dataclass(frozen=True)
class Access:
    """One authorization decision of the stand-in: `user` asked to `verb` `resource` in `group`."""

    user: str
    verb: str
    group: str
    resource: str
    name: str
    allowed: bool
