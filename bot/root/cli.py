"""The `firebreak` command: serve the bot, or check that its configuration and dependencies work."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from bot.core.errors import ConfigError
from bot.root.settings import Settings


def _settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        print("firebreak: the configuration is not usable:", file=sys.stderr)
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            print(f"  {field.upper()}: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        print("See the configuration table in README.md.", file=sys.stderr)
        raise SystemExit(2) from None


async def check(settings: Settings) -> int:
    """One line per dependency; non-zero exit if any is broken."""
    from slack_sdk.errors import SlackApiError

    from bot.adapters.slack_chat import chat_error, make_client
    from bot.core.config import load_config
    from bot.root.app import connect_redis

    failures = 0
    try:
        config = load_config(settings.config_file)
        print(f"config: ok ({config.command}, {len(config.severities)} severities, roles {', '.join(config.roles)})")
    except ConfigError as exc:
        print(f"config: FAILED {exc}")
        failures += 1
    mode = "socket mode" if settings.socket_mode else "HTTP mode at /slack/events"
    print(f"slack mode: {mode}")
    where = settings.redis_url or f"embedded, data in {settings.data_dir}"
    try:
        client, embedded = await connect_redis(settings)
        try:
            await asyncio.wait_for(client.ping(), timeout=5)
            info = await client.info("server")
            print(f"redis: ok ({where}, redis {info.get('redis_version', '?')})")
        finally:
            await client.aclose()
            if embedded is not None:
                await embedded.stop()
    except Exception as exc:
        print(f"redis: FAILED ({where}): {type(exc).__name__}: {exc}")
        failures += 1
    web = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, max_rate_limit_retries=1)
    try:
        auth = await web.auth_test()
        print(f"slack: ok (team {auth.get('team')}, bot @{auth.get('user')}, {settings.slack_api_url})")
    except SlackApiError as exc:
        print(f"slack: FAILED {chat_error(exc, 'auth.test', 'Slack')}")
        failures += 1
    except Exception as exc:
        print(f"slack: FAILED could not reach {settings.slack_api_url}: {type(exc).__name__}: {exc}")
        failures += 1
    if settings.announce_channel:
        try:
            await web.conversations_info(channel=settings.announce_channel.lstrip("#"))
            print(f"announce channel: ok ({settings.announce_channel})")
        except SlackApiError as exc:
            print(f"announce channel: FAILED {chat_error(exc, 'conversations.info', settings.announce_channel)}")
            failures += 1
    else:
        print("announce channel: not set (incidents will not be announced)")
    print("check: FAILED" if failures else "check: ok")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="firebreak", description="ChatOps incident bot for Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    sub.add_parser("check", help="validate configuration and reach Redis and Slack")
    args = parser.parse_args(argv)
    settings = _settings_or_exit()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "check":
        raise SystemExit(asyncio.run(check(settings)))
    from bot.root.runtime import serve

    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
