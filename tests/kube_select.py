"""Label and field selectors, parsed and matched as the Kubernetes API server does for list calls.

- Label selectors parse like k8s.io/apimachinery/pkg/labels.Parse (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`,
  `>`, `<`); `!=` and `notin` also match objects without the key; a malformed one is 400 `unable to parse
  requirement`. Selector objects (matchLabels, matchExpressions) match like metav1.LabelSelectorAsSelector, and an
  empty one matches everything (policy/v1 PDB semantics).
- Field selectors (fields.ParseSelector: `=`, `==`, `!=` only) accept just the fields each kind's ConvertFieldLabel
  supports; anything else is 400 `field label not supported: <field>`, as the list handler answers. Field values are
  what the registry's field getters return (bools as "true"/"false", a missing field as "").
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.kube_rules import Resource, bad_request, get_path

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)


# ---- label selectors ------------------------------------------------------------------------------------------

Requirement = tuple[str, str, frozenset[str]]
_REQ = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>(),]+)\s*(?:(?P<op>==|=|!=|>|<|\s+in\s+|\s+notin\s+)\s*(?P<val>.*?))?\s*"
)


def _split_top(text: str) -> list[str]:
    """Commas separate requirements except inside the parentheses of `in (a,b)`."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def parse_label_selector(text: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    if not text.strip():
        return reqs
    for part in _split_top(text):
        m = _REQ.fullmatch(part)
        if m is None or not LABEL_KEY.fullmatch(m["key"]) or (m["neg"] and m["op"]):
            raise bad_request(f"unable to parse requirement: found '{part.strip()}', expected: identifier")
        key, op, val = m["key"], (m["op"] or "").strip(), (m["val"] or "").strip()
        if m["neg"]:
            reqs.append((key, "DoesNotExist", frozenset()))
        elif not op:
            reqs.append((key, "Exists", frozenset()))
        elif op in ("in", "notin"):
            if not (val.startswith("(") and val.endswith(")")):
                raise bad_request(f"unable to parse requirement: found '{val}', expected: '('")
            values = frozenset(v.strip() for v in val[1:-1].split(","))
            reqs.append((key, "In" if op == "in" else "NotIn", values))
        else:
            reqs.append((key, {"=": "In", "==": "In", "!=": "NotIn", ">": "Gt", "<": "Lt"}[op], frozenset([val])))
        for v in reqs[-1][2]:
            if not LABEL_VALUE.fullmatch(v) or len(v) > 63:
                raise bad_request(f"unable to parse requirement: values[0][{key}]: Invalid value: {json.dumps(v)}")
    return reqs


def selector_requirements(selector: dict[str, Any] | None) -> list[Requirement]:
    """metav1.LabelSelectorAsSelector: matchLabels are `key in (value)`, matchExpressions as written."""
    selector = selector or {}
    reqs: list[Requirement] = [(k, "In", frozenset([v])) for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        reqs.append((e["key"], e["operator"], frozenset(e.get("values") or [])))
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present, value = key in labels, labels.get(key, "")
        ok = {
            "In": present and value in values,
            "NotIn": not present or value not in values,
            "Exists": present,
            "DoesNotExist": not present,
            "Gt": present and value.isdigit() and all(int(value) > int(v) for v in values if v.isdigit()),
            "Lt": present and value.isdigit() and all(int(value) < int(v) for v in values if v.isdigit()),
        }[op]
        if not ok:
            return False
    return True


# ---- field selectors ------------------------------------------------------------------------------------------


def parse_field_selector(res: Resource, text: str) -> list[tuple[str, bool, str]]:
    """(field, equal?, value) terms; only `=`, `==` and `!=` exist for fields (fields.ParseSelector)."""
    terms: list[tuple[str, bool, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", part)
        if m is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if m[1] not in res.fields:
            raise bad_request(f"field label not supported: {m[1]}")
        terms.append((m[1], m[2] != "!=", m[3]))
    return terms


def field_value(obj: dict[str, Any], field: str) -> str:
    value = get_path(obj, field)
    if isinstance(value, bool) or (value is None and field in ("spec.unschedulable", "spec.hostNetwork")):
        return "true" if value else "false"  # the field getters format bools with strconv.FormatBool
    return "" if value is None else str(value)


def fields_match(terms: list[tuple[str, bool, str]], obj: dict[str, Any]) -> bool:
    return all((field_value(obj, f) == v) == eq for f, eq, v in terms)
