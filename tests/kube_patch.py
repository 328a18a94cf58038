"""The three PATCH formats the Kubernetes API server accepts from a JSON client, applied as it applies them.

- application/json-patch+json (RFC 6902): a list of add/remove/replace/move/copy/test operations. A body that is
  not a list is 400 BadRequest (jsonpatch.DecodePatch fails; the kubernetes-asyncio CustomObjectsApi sends a dict
  body under this type unless told `_content_type`, and the real server refuses it). An operation that does not
  apply, or a failed `test`, is 422 with the jsonpatch error as the cause (patch.go's applyJSPatch).
- application/merge-patch+json (RFC 7386): objects merge, null deletes, lists are replaced whole.
- application/strategic-merge-patch+json, built-in kinds only (a custom resource answers 415): like merge patch,
  except lists with a patchMergeKey in the Go types merge element by element (containers and env by name, ...),
  `$patch: replace` replaces a map or list, `$patch: delete` deletes a map or list element, and the
  `$setElementOrder/` hints `kubectl apply` sends are accepted. So a strategic patch of spec.template merges
  containers by name rather than replacing the template: rolling back through it needs `$patch: replace`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.kube_rules import KubeError, Resource, bad_request, json_kind, unsupported_media

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"

# patchMergeKey of the list fields these kinds carry (k8s.io/api struct tags); other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "taints": "key",
}
PRIMITIVE_MERGE = {"finalizers"}  # patchStrategy:"merge" on a list of strings: a set union


def apply_patch(res: Resource, content_type: str, current: dict[str, Any], raw: bytes) -> dict[str, Any]:
    if content_type not in (JSON_PATCH, MERGE_PATCH) and not (content_type == STRATEGIC and res.builtin):
        raise unsupported_media(res)
    try:
        patch = json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request(f"json: cannot unmarshal {json_kind(patch)} into Go value of type jsonpatch.Patch")
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request("error decoding patch: the patch is not a JSON object")
    result = merge_patch(current, patch) if content_type == MERGE_PATCH else strategic_merge(current, patch)
    if not isinstance(result, dict):
        raise bad_request("the patch deleted the whole object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(original: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise bad_request(f"Unknown patch type: {directive!r}")
    out = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys")):
            continue  # ordering and retain hints: the result's content is the same without them
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS:
            out[key] = _merge_list(out.get(key) or [], value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in PRIMITIVE_MERGE:
            out[key] = list(dict.fromkeys([*(out.get(key) or []), *value]))
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_list(original: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    out = copy.deepcopy(original)
    for element in patch:
        if not isinstance(element, dict) or merge_key not in element:
            raise bad_request(f"map: {element} does not contain declared merge key: {merge_key}")
        index = next((i for i, e in enumerate(out) if e.get(merge_key) == element[merge_key]), None)
        if element.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(strategic_merge({}, element))
        else:
            out[index] = strategic_merge(out[index], element)
    return out


# ---- RFC 6902 -------------------------------------------------------------------------------------------------


def _unprocessable(message: str) -> KubeError:
    """errors.NewGenericServerResponse(422, ...): a generic message, the jsonpatch error as the cause."""
    msg = "the server rejected our request due to an error in our request"
    return KubeError(422, "Invalid", msg, {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]})


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f"invalid JSON pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parent(doc: Any, path: str, op: str) -> tuple[Any, str]:
    tokens = _pointer(path)
    if not tokens:
        raise _unprocessable(f"{op} operation does not apply: the whole document")
    node = doc
    for t in tokens[:-1]:
        try:
            node = node[int(t)] if isinstance(node, list) else node[t]
        except (KeyError, IndexError, ValueError, TypeError):
            raise _unprocessable(f"{op} operation does not apply: doc is missing path: {path!r}") from None
    return node, tokens[-1]


def _index(node: list[Any], token: str, path: str, op: str, *, inserting: bool) -> int:
    if inserting and token == "-":
        return len(node)
    limit = len(node) + (1 if inserting else 0)
    if not token.isdigit() or int(token) >= limit:
        raise _unprocessable(f"{op} operation does not apply: index out of range: {path!r}")
    return int(token)


def _get(doc: Any, path: str, op: str) -> Any:
    if path == "":
        return doc
    node, token = _parent(doc, path, op)
    if isinstance(node, list):
        return node[_index(node, token, path, op, inserting=False)]
    if not isinstance(node, dict) or token not in node:
        raise _unprocessable(f"{op} operation does not apply: doc is missing key: {path}: missing value")
    return node[token]


def _remove(doc: Any, path: str, op: str) -> Any:
    _get(doc, path, op)
    node, token = _parent(doc, path, op)
    return node.pop(_index(node, token, path, op, inserting=False) if isinstance(node, list) else token)


def _add(doc: Any, path: str, value: Any) -> Any:
    if path == "":
        return value
    node, token = _parent(doc, path, "add")
    if isinstance(node, list):
        node.insert(_index(node, token, path, "add", inserting=True), value)
    elif isinstance(node, dict):
        node[token] = value
    else:
        raise _unprocessable(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def json_patch(current: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    doc: Any = copy.deepcopy(current)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise bad_request(f"invalid JSON patch operation: {op!r}")
        kind, path, value = op.get("op"), op["path"], copy.deepcopy(op.get("value"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _unprocessable(f"{kind} operation: missing value")
        if kind == "add":
            doc = _add(doc, path, value)
        elif kind == "remove":
            _remove(doc, path, "remove")
        elif kind == "replace":
            _remove(doc, path, "replace")
            doc = _add(doc, path, value)
        elif kind == "test":
            if json.dumps(_get(doc, path, "test"), sort_keys=True) != json.dumps(value, sort_keys=True):
                raise _unprocessable(f"testing value {path} failed: test failed")
        elif kind in ("move", "copy"):
            source = _get(doc, str(op.get("from")), kind)
            if kind == "move":
                _remove(doc, str(op.get("from")), "move")
            doc = _add(doc, path, copy.deepcopy(source))
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise _unprocessable("the patched document is not an object")
    return doc
