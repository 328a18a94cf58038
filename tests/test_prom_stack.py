"""The alert test stack works without the bot: a real rule fires and resolves, and Alertmanager's webhooks arrive."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.prom_proc import MODEL_SERVER_DOWN, Exporter, StartPromStack

TOKEN = "alerts-token-for-tests"
SCOPE = {"service": "checkout", "model": "llama-70b", "pool": "a100"}
PAYLOADS = Path(__file__).parent / "payloads"
# FIREBREAK_RECORD_PAYLOADS=1 rewrites tests/payloads/alertmanager_*.json from this run; otherwise they are checked.
RECORD = os.environ.get("FIREBREAK_RECORD_PAYLOADS") == "1"


class Receiver:
    """Stands where the bot's endpoint will: takes Alertmanager's webhooks, checks the bearer token, keeps payloads."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.payloads: list[dict[str, Any]] = []
        self.refused = 0
        self.port = 0
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts/alertmanager"

    async def _post(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused += 1
            return web.Response(status=401)
        payload = await request.json()
        async with self._arrived:
            self.payloads.append(payload)
            self._arrived.notify_all()
        return web.Response()

    async def wait_for(self, status: str, within: float) -> dict[str, Any]:
        """The first payload with this status, waiting up to `within` seconds for it."""

        def found() -> dict[str, Any] | None:
            return next((p for p in self.payloads if p["status"] == status), None)

        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None)
        payload = found()
        assert payload is not None
        return payload

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts/alertmanager", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(TOKEN)
    await r.start()
    yield r
    await r.stop()


def shape(value: Any) -> Any:
    """The keys of a JSON value, all the way down, without the values: what unit tests rely on in a payload."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def keep(name: str, payload: dict[str, Any]) -> None:
    path = PAYLOADS / name
    if RECORD:
        PAYLOADS.mkdir(exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
    else:
        recorded = json.loads(path.read_text())
        assert shape(recorded) == shape(payload), f"{path} no longer matches what Alertmanager sends: re-record it"


async def test_a_rule_fires_and_resolves_through_real_prometheus_and_alertmanager(
    receiver: Receiver, prom_exporter: Exporter, start_prom_stack: StartPromStack
) -> None:
    prom_exporter.set("model_server_up", 1, SCOPE)
    stack = await start_prom_stack(
        rules=MODEL_SERVER_DOWN, targets=[prom_exporter.target], webhook_url=receiver.url, token=TOKEN
    )
    await prom_exporter.scraped()

    down = time.monotonic()
    prom_exporter.set("model_server_up", 0, SCOPE)
    firing = await receiver.wait_for("firing", within=10)
    fired_in = time.monotonic() - down

    assert firing["version"] == "4"
    assert firing["receiver"] == "firebreak"
    assert firing["externalURL"] == stack.alertmanager.url
    [alert] = firing["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "ModelServerDown",
        "severity": "critical",
        "instance": prom_exporter.target,
        "job": "exporter",
        **SCOPE,
    }
    assert alert["annotations"] == {
        "summary": "llama-70b on a100 is down for checkout",
        "runbook_url": "https://runbooks.example.com/model-server-down",
    }
    assert alert["generatorURL"].startswith(f"{stack.prometheus.url}/graph?")
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert firing["groupLabels"] == {"alertname": "ModelServerDown", "service": "checkout"}
    assert firing["commonLabels"] == alert["labels"]

    up = time.monotonic()
    prom_exporter.set("model_server_up", 1, SCOPE)
    resolved = await receiver.wait_for("resolved", within=10)
    resolved_in = time.monotonic() - up

    [gone] = resolved["alerts"]
    assert gone["status"] == "resolved"
    assert gone["fingerprint"] == alert["fingerprint"]
    assert gone["startsAt"] == alert["startsAt"]
    assert datetime.fromisoformat(gone["endsAt"]) > datetime.fromisoformat(gone["startsAt"])
    assert resolved["groupKey"] == firing["groupKey"]
    assert receiver.refused == 0
    # With 1 s scrapes, evaluations, group_wait and group_interval, each leg takes a few seconds at most.
    assert fired_in < 6, fired_in
    assert resolved_in < 6, resolved_in

    keep("alertmanager_firing.json", firing)
    keep("alertmanager_resolved.json", resolved)
