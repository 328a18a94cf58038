"""A Kubernetes API server stand-in that the real kubernetes-asyncio client talks to through a kubeconfig.

It serves core/v1 nodes and pods (with pods/eviction), apps/v1 deployments and replicasets (with their scale),
policy/v1 poddisruptionbudgets, and Argo CD Applications and Flux Kustomizations / HelmReleases, in the real JSON
shapes, and is as strict as an API server where mitigation playbooks depend on it. This module is the HTTP side:
- routes are the real paths (/api/v1/..., /apis/<group>/<version>/..., cluster-wide lists of namespaced kinds);
  anything else is the real 404 `the server could not find the requested resource`;
- bearer-token authentication (401 Unauthorized, before anything else);
- Impersonate-User: the impersonated user is the one authorized and named in denials, and impersonating can itself
  be denied (`cannot impersonate resource "users"`), as the impersonation filter does;
- RBAC denials scripted per verb and resource (`pods/eviction`), worded as the authorizer words them; or, with
  `enforce_rbac`, a ClusterRole's rules as the only grants of a user, matched as the RBAC authorizer does (kube_rbac);
- dryRun validated per verb (kube_rules), then the verbs (kube_verbs) over the store and controllers (kube_store),
  with selectors (kube_select), patches (kube_patch) and validation (kube_validate).
Tests also script 5xx answers and delays per verb and resource, and read every request back from `requests`.
Not served: watches, server-side apply, namespaces as objects, other kinds and subresources.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.kube_rbac import Access, Rule, allowed
from tests.kube_rules import RESOURCES, KubeError, Resource, dry_run, forbidden
from tests.kube_verbs import KubeVerbs

SERVICE_ACCOUNT = "system:serviceaccount:firebreak:firebreak"
_TAIL = r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
CORE = re.compile(r"/api/v1" + _TAIL)
GROUPED = re.compile(r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)" + _TAIL)
SUBRESOURCES: dict[str, tuple[str, ...]] = {r.plural: ("",) for r in RESOURCES.values()}
SUBRESOURCES |= {"pods": ("", "eviction"), "deployments": ("", "scale"), "replicasets": ("", "scale")}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class KubeRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    headers: dict[str, str]
    body: Any
    verb: str = ""
    """The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection."""
    resource: str = ""
    """The plural, with the subresource (`pods/eviction`)."""
    namespace: str = ""
    name: str = ""
    user: str = ""
    """Who the request acts as: the impersonated user if any, else the token's service account."""
    impersonated: str | None = None
    status: int = 0


@dataclass
class Scripted:
    status: int
    message: str
    retry_after: int | None = None
    when: Callable[[KubeRequest], bool] | None = None
    """Only a request this accepts takes the failure (a real write, not its dry run)."""


@dataclass
class Delay:
    seconds: float
    after: bool
    """Apply the request first and delay only the answer: a timeout whose write still happened."""
    when: Callable[[KubeRequest], bool] | None = None
    """Only requests this accepts are delayed (one object's write, say); the rest answer at once."""


@dataclass
class _Route:
    res: Resource
    namespace: str
    name: str
    sub: str
    verb: str = ""
    resource: str = ""


class KubeStandIn(KubeVerbs):
    def __init__(self, token: str = "kube-standin-token", user: str = SERVICE_ACCOUNT) -> None:
        super().__init__()
        self.token, self.user = token, user
        self.requests: list[KubeRequest] = []
        self.forbidden: set[tuple[str, str, str | None]] = set()
        self.roles: dict[str, list[Rule]] = {}
        self.access: list[Access] = []
        """Every authorization decision, in order: who, which permission, allowed or not."""
        self.failures: dict[tuple[str, str], list[Scripted]] = {}
        self.delays: dict[tuple[str, str], Delay] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # ---- scripting and inspection ------------------------------------------------------------------------------

    def forbid(self, verb: str, resource: str, *, user: str | None = None) -> None:
        """Deny `verb` on `resource` (`nodes`, `pods/eviction`, `users` for impersonate) to `user`, or to everyone."""
        self.forbidden.add((verb, resource, user))

    def enforce_rbac(self, rules: list[dict[str, Any]], *, user: str | None = None) -> None:
        """Grant `user` (default: the service account) these ClusterRole rules and nothing else: any (verb, group,
        resource, name) no rule allows is denied, as the RBAC authorizer denies it. Called again, the rules add up,
        as a second ClusterRoleBinding's do. `forbid` still denies on top."""
        self.roles.setdefault(user or self.user, []).extend(Rule.of(r) for r in rules)

    def fail(
        self,
        verb: str,
        resource: str,
        status: int,
        *,
        times: int = 1,
        message: str = "",
        retry_after: int | None = None,
        when: Callable[[KubeRequest], bool] | None = None,
    ) -> None:
        message = message or f"Internal error occurred: scripted {status}"
        self.failures.setdefault((verb, resource), []).extend(
            Scripted(status, message, retry_after, when) for _ in range(times)
        )

    def delay(
        self,
        verb: str,
        resource: str,
        seconds: float,
        *,
        after: bool = False,
        when: Callable[[KubeRequest], bool] | None = None,
    ) -> None:
        self.delays[(verb, resource)] = Delay(seconds, after, when)

    def calls(self, verb: str | None = None, resource: str | None = None) -> list[KubeRequest]:
        return [r for r in self.requests if verb in (None, r.verb) and resource in (None, r.resource)]

    def write_kubeconfig(self, path: Path, *, context: str = "kube-standin", namespace: str = "default") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # ---- server ------------------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def __aenter__(self) -> KubeStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._closing.set()  # releases delayed requests so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        rec = KubeRequest(
            request.method, request.path, dict(request.query), request.content_type, dict(request.headers), body
        )
        self.requests.append(rec)
        try:
            code, answer = await self._answer(request, rec, raw)
            response = web.json_response(answer, status=code)
        except KubeError as exc:
            response = web.json_response(exc.status(), status=exc.code, headers=exc.headers)
        rec.status = response.status
        return response

    async def _answer(self, request: web.Request, rec: KubeRequest, raw: bytes) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise KubeError(401, "Unauthorized", "Unauthorized")
        if request.path == "/version":
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.1", "platform": "linux/amd64"}
        route = self._route(request)
        rec.verb, rec.resource, rec.namespace, rec.name = route.verb, route.resource, route.namespace, route.name
        rec.impersonated = request.headers.get("Impersonate-User")
        rec.user = rec.impersonated or self.user
        self._authorize(route, rec.impersonated, rec.user)
        queue = self.failures.get((route.verb, route.resource))
        if queue and (queue[0].when is None or queue[0].when(rec)):
            s = queue.pop(0)
            retry = {"Retry-After": str(s.retry_after)} if s.retry_after is not None else {}
            details = {"retryAfterSeconds": s.retry_after} if s.retry_after is not None else None
            raise KubeError(s.status, REASONS.get(s.status, "InternalError"), s.message, details, retry)
        delay = self.delays.get((route.verb, route.resource))
        if delay is not None and delay.when is not None and not delay.when(rec):
            delay = None
        if delay is not None and not delay.after:
            await self._sleep(delay.seconds)
        answer = self._dispatch(request, route, raw)
        if delay is not None and delay.after:
            await self._sleep(delay.seconds)
        return answer

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _route(self, request: web.Request) -> _Route:
        m = CORE.fullmatch(request.path) or GROUPED.fullmatch(request.path)
        group, version = (m.groupdict().get("group") or "", m.groupdict().get("version") or "v1") if m else ("", "")
        res = RESOURCES.get((group, version, m["plural"])) if m else None
        if m is None or res is None:
            raise _no_route()
        ns, name, sub = m["ns"] or "", m["name"] or "", m["sub"] or ""
        if (ns and not res.namespaced) or (res.namespaced and name and not ns) or sub not in SUBRESOURCES[res.plural]:
            raise _no_route()  # also what the real server answers to a path its routes do not have
        verb = VERBS.get(request.method, "")
        if request.method == "GET" and not name:
            verb = "watch" if request.query.get("watch") in ("true", "1") else "list"
        if request.method == "DELETE" and not name:
            verb = "deletecollection"
        return _Route(res, ns, name, sub, verb, f"{res.plural}/{sub}" if sub else res.plural)

    def _authorize(self, route: _Route, impersonated: str | None, user: str) -> None:
        if impersonated is not None and self._denied("impersonate", "", "users", impersonated, self.user):
            raise forbidden("users", "", "impersonate", impersonated, "", self.user)
        if self._denied(route.verb, route.res.group, route.resource, route.name, user):
            raise forbidden(route.resource, route.res.group, route.verb, route.name, route.namespace, user)

    def _denied(self, verb: str, group: str, resource: str, name: str, user: str) -> bool:
        denied = (verb, resource, None) in self.forbidden or (verb, resource, user) in self.forbidden
        if user in self.roles and not allowed(self.roles[user], verb, group, resource, name):
            denied = True
        self.access.append(Access(user, verb, group, resource, name, allowed=not denied))
        return denied

    def _dispatch(self, request: web.Request, r: _Route, raw: bytes) -> tuple[int, Any]:
        res, ns, name, q, ctype = r.res, r.namespace, r.name, request.query, request.content_type
        options = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}.get(r.verb)
        dry = dry_run(q.getall("dryRun", []), options) if options else False  # reads take no dryRun
        if r.verb == "get":
            return 200, self.api_get(res, ns, name)
        if r.verb == "list":
            return 200, self.api_list(res, ns, dict(q))
        if r.sub == "scale" and r.verb in ("get", "update", "patch"):
            return 200, self.api_scale(res, ns, name, r.verb, raw, ctype, dry)
        if r.verb == "create" and r.sub == "eviction":
            return 201, self.api_evict(ns, name, raw, ctype, dry)
        if r.verb == "create" and not name and (ns or not res.namespaced):
            return 201, self.api_create(res, ns, raw, ctype, dry)
        if r.verb == "update" and not r.sub:
            return 200, self.api_update(res, ns, name, raw, ctype, dry)
        if r.verb == "patch" and not r.sub:
            return 200, self.api_patch(res, ns, name, raw, ctype, dry)
        if r.verb == "delete" and not r.sub:
            opts = json.loads(raw) if raw.strip() else {}
            dry = dry_run(q.getall("dryRun", []) or opts.get("dryRun") or [], "DeleteOptions")
            return 200, self.api_delete(res, ns, name, opts, dry)
        raise KubeError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _no_route() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})
