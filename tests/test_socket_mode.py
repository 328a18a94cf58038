"""Socket Mode: with SLACK_APP_TOKEN, the same listeners answer over Slack's websocket instead of HTTP."""

from __future__ import annotations

from bot.root.runtime import connect_socket_mode
from bot.root.settings import Settings
from tests.conftest import make_settings
from tests.harness import running, slash_command
from tests.slack_standin import SlackStandIn


async def test_slash_command_over_socket_mode(slack: SlackStandIn, redis_url: str) -> None:
    settings: Settings = make_settings(slack, redis_url, slack_app_token=slack.app_token, slack_signing_secret=None)
    async with running(settings, slack) as h:
        handler = await connect_socket_mode(h.fb)
        assert handler is not None
        try:
            payload = slash_command(
                "declare sev1 Socket mode outage",
                user="UALICE",
                channel="CGENERAL",
                command="/incident",
                response_url=slack.response_url("sock1"),
                trigger_id="trig-sock-1",
            )
            ack = await slack.send_envelope("slash_commands", payload)
            assert "Declaring SEV1" in ack["payload"]["text"]
            bad = await slack.send_envelope("slash_commands", {**payload, "text": "sev 9", "trigger_id": "t2"})
            assert bad["payload"]["text"].startswith(":warning: '9' is not a severity")
            await h.settle()
            (incident,) = await h.fb.service.list_open()
            assert incident.title == "Socket mode outage" and incident.channel_id
            assert "Declared *INC-1*" in h.last_reply()
            assert slack.calls_to("apps.connections.open"), "the app token opened the connection"
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
