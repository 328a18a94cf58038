"""The `firebreak` command: serve the bot, or check that its configuration and dependencies work."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from bot.core.errors import ConfigError
from bot.root.settings import Settings, describe_settings


def _settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        print(settings_problems(exc), file=sys.stderr)
        raise SystemExit(2) from None


def settings_problems(exc: ValidationError) -> str:
    """Every problem at once, in the environment's terms: what is missing, what is malformed, and how to start."""
    env_of = {name: env for name, env in zip(Settings.model_fields, (r[0] for r in describe_settings()), strict=True)}
    doc_of = {env: doc for env, _, doc in describe_settings()}
    missing, malformed = [], []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        env = env_of.get(field, field.upper() or "settings")
        if err["type"] == "missing":
            missing.append(f"  {env} is not set: {doc_of.get(env, '')}")
        elif err.get("input") is None:  # a validator asking for an unset setting (the signing secret)
            missing.append(f"  {env} is not set: {err['msg'].removeprefix('Value error, ')}")
        else:
            malformed.append(f"  {env}: {err['msg'].removeprefix('Value error, ')}")
    lines = ["firebreak: the configuration is not usable:", *missing, *malformed]
    if missing:
        lines.append("On a first run: `cp .env.example .env`, fill in what is missing, and run again.")
    lines.append("Every setting is described in README.md (Configuration).")
    return "\n".join(lines)


async def check(settings: Settings) -> int:
    """One line per dependency; non-zero exit if any is broken. Never a traceback: each failure says why."""
    from bot.root.checks import run_checks

    results = await run_checks(settings)
    for name, ok, detail in results:
        print(f"{name}: {'ok' if ok else 'FAILED'} {detail}".rstrip())
    failed = not all(ok for _, ok, _ in results)
    print("check: FAILED" if failed else "check: ok")
    return 1 if failed else 0


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
