"""Real Prometheus and Alertmanager drive the bot: a rule fires, Alertmanager delivers the webhook to the running
bot's endpoint, the bot declares the incident; the gauge recovers, the resolved alert reaches the timeline.
Also the payloads a real Alertmanager sent, replayed: the same body twice is one incident, one timeline entry."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from tests.conftest import make_settings
from tests.harness import Harness, eventually, running
from tests.prom_proc import MODEL_SERVER_DOWN, Exporter, StartPromStack
from tests.slack_standin import SlackStandIn

TOKEN = "alerts-token-for-tests"
SCOPE = {"service": "checkout", "model": "llama-70b", "pool": "a100"}
PAYLOADS = Path(__file__).parent / "payloads"


async def alert_events(bot: Harness, incident_id: int) -> list[str]:
    return [
        getattr(e.payload, "status", "") for e in await bot.fb.service.timeline(incident_id) if e.kind.value == "alert"
    ]


async def test_a_real_alert_declares_and_its_resolution_reaches_the_timeline(
    slack: SlackStandIn,
    redis_url: str,
    prom_exporter: Exporter,
    start_prom_stack: StartPromStack,
) -> None:
    async with running(make_settings(slack, redis_url, alerts_token=TOKEN), slack) as bot:
        prom_exporter.set("model_server_up", 1, SCOPE)
        await start_prom_stack(
            rules=MODEL_SERVER_DOWN,
            targets=[prom_exporter.target],
            webhook_url=f"{bot.url}/alerts/alertmanager",
            token=TOKEN,
        )
        await prom_exporter.scraped(within=15)
        prom_exporter.set("model_server_up", 0, SCOPE)

        async def declared() -> bool:
            await bot.settle()
            return bool(await bot.fb.service.list_open())

        await eventually(declared, within=30, what="the firing alert never opened an incident")
        (incident,) = await bot.fb.service.list_open()
        assert incident.scope == SCOPE and incident.origin is not None
        assert incident.origin.runbook_url == "https://runbooks.example.com/model-server-down"
        assert incident.title.startswith("llama-70b on a100 is down for checkout")

        prom_exporter.set("model_server_up", 1, SCOPE)

        async def resolved() -> bool:
            await bot.settle()
            return "resolved" in await alert_events(bot, incident.id)

        await eventually(resolved, within=30, what="the resolved alert never reached the timeline")
        assert (await alert_events(bot, incident.id)).count("firing") == 1


async def test_recorded_payloads_replayed_twice_change_nothing_the_second_time(
    slack: SlackStandIn, redis_url: str
) -> None:
    firing = (PAYLOADS / "alertmanager_firing.json").read_bytes()
    resolved = (PAYLOADS / "alertmanager_resolved.json").read_bytes()
    async with running(make_settings(slack, redis_url, alerts_token=TOKEN), slack) as bot:
        assert bot.session is not None
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        for body in (firing, firing, resolved, resolved):
            url = f"{bot.url}/alerts/alertmanager"
            async with bot.session.post(url, data=io.BytesIO(body), headers=headers) as resp:
                assert resp.status == 200, await resp.text()
            await asyncio.sleep(1.1)
            await bot.settle()
        (incident,) = await bot.fb.service.list_open()
        assert await alert_events(bot, incident.id) == ["firing", "resolved"]
        fired = json.loads(firing)["alerts"][0]
        assert incident.scope == {k: fired["labels"][k] for k in ("service", "model", "pool") if k in fired["labels"]}
