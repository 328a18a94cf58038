"""`firebreak check`: configuration, Redis, Prometheus, Slack and the announcement channel, each reported on its own
line."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.adapters.prometheus import PrometheusSource
from bot.adapters.slack_chat import SlackChat, chat_error, make_client
from bot.core.config import IncidentConfig, load_config
from bot.core.errors import ConfigError, FirebreakError, MetricsError
from bot.root.app import connect_redis
from bot.root.settings import Settings

Result = tuple[str, bool, str]
TIMEOUT_SECONDS = 10


async def run_checks(settings: Settings) -> list[Result]:
    results: list[Result] = []
    config = IncidentConfig()
    try:
        config = load_config(settings.config_file)
        results.append(
            (
                "config",
                True,
                f"({config.command}, {len(config.severities)} severities, roles {', '.join(config.roles)})",
            )
        )
    except ConfigError as exc:
        results.append(("config", False, str(exc)))
    mode = "socket mode" if settings.socket_mode else "HTTP mode at /slack/events"
    results.append(("slack mode", True, f"({mode})"))
    results.append(await _redis(settings))
    results.append(await prometheus_check(settings, config))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as session:
        client = make_client(
            settings.slack_bot_token.get_secret_value(),
            settings.slack_api_url,
            session=session,
            max_rate_limit_retries=1,
        )
        slack = await _slack(settings, client.auth_test)
        results.append(slack)
        results.append(await _announce(settings, SlackChat(client, config), reachable=slack[1]))
    return results


async def _redis(settings: Settings) -> Result:
    where = settings.redis_url or f"embedded, data in {settings.data_dir}"
    try:
        client, embedded = await connect_redis(settings)
        try:
            await asyncio.wait_for(client.ping(), timeout=5)
            info = await client.info("server")
            return "redis", True, f"({where}, redis {info.get('redis_version', '?')})"
        finally:
            await client.aclose()
            if embedded is not None:
                await embedded.stop()
    except Exception as exc:
        return "redis", False, f"({where}): {type(exc).__name__}: {exc}"


async def prometheus_check(settings: Settings, config: IncidentConfig) -> Result:
    """Prometheus answers a query (what the evidence panel needs); unset is fine, the panel is off then."""
    url = settings.prometheus_url
    if not url:
        return "prometheus", True, "not set (the evidence panel is off)"
    source = PrometheusSource(url, timeout_seconds=min(config.evidence.timeout_seconds, TIMEOUT_SECONDS))
    try:
        await source.instant("vector(1)")
    except MetricsError as exc:
        return "prometheus", False, f"{url}: {exc.reason}"
    finally:
        source.close()
    return "prometheus", True, f"({url})"


async def _slack(settings: Settings, auth_test: Any) -> Result:
    try:
        auth = await auth_test()
        return "slack", True, f"(team {auth.get('team')}, bot @{auth.get('user')}, {settings.slack_api_url})"
    except SlackApiError as exc:
        return "slack", False, str(chat_error(exc, "auth.test", "Slack"))
    except Exception as exc:
        return "slack", False, f"could not reach {settings.slack_api_url}: {type(exc).__name__}: {exc}"


async def _announce(settings: Settings, chat: SlackChat, *, reachable: bool) -> Result:
    ref = settings.announce_channel
    if not ref:
        return "announce channel", True, "not set (incidents will not be announced)"
    if not reachable:
        return "announce channel", False, f"{ref}: not checked, Slack is not reachable with this token"
    try:
        channel_id = await chat.resolve_channel(ref)
        await chat.channel_info(channel_id)
    except FirebreakError as exc:
        return "announce channel", False, f"{ref}: {exc}"
    shown = ref if ref == channel_id else f"{ref} is {channel_id}"
    return "announce channel", True, f"({shown})"
