"""The firebreak command as an operator runs it: a subprocess with environment variables."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.harness import BOT_TOKEN, SIGNING_SECRET, eventually, firebreak_env, sign, wait_ready
from tests.slack_standin import SlackStandIn


def cli_env(slack: SlackStandIn, tmp_path: Path, **extra: str) -> dict[str, str]:
    defaults = {
        "FIREBREAK_ANNOUNCE_CHANNEL": slack.by_name("incidents").id,
        "FIREBREAK_DATA_DIR": str(tmp_path / "data"),
    }
    return firebreak_env(f"{slack.url}/api/", **(defaults | extra))


async def start_cli(*args: str, env: dict[str, str], cwd: Path, stderr: int) -> asyncio.subprocess.Process:
    """`firebreak <args>` as a subprocess (`python -m bot` is the console script's entry point)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await start_cli(*args, env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_check_reports_each_dependency(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    code, out, _ = await run_cli("check", env=cli_env(slack, tmp_path, REDIS_URL=redis_url), cwd=tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("config: ok (/incident, 4 severities")
    assert any(line.startswith("redis: ok (unix://") for line in lines)
    assert "slack: ok (team Firebreak Test, bot @firebreak" in out
    assert lines[-1] == "check: ok"
    assert BOT_TOKEN not in out


async def test_check_fails_clearly(slack: SlackStandIn, tmp_path: Path) -> None:
    env = cli_env(
        slack,
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-revoked",
        REDIS_URL=f"unix://{tmp_path}/none.sock",
        FIREBREAK_ANNOUNCE_CHANNEL="CMISSING",
    )
    code, out, _ = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 1
    assert "redis: FAILED" in out
    assert "slack: FAILED Slack rejected firebreak's token (invalid_auth)" in out
    assert out.splitlines()[-1] == "check: FAILED"
    assert "xoxb-revoked" not in out


async def test_check_resolves_the_announcement_channel_by_name(
    slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    env = cli_env(slack, tmp_path, REDIS_URL=redis_url, FIREBREAK_ANNOUNCE_CHANNEL="#incidents")
    code, out, _ = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 0, out
    assert f"announce channel: ok (#incidents is {slack.by_name('incidents').id})" in out


async def test_check_with_slack_unreachable_reports_instead_of_a_traceback(redis_url: str, tmp_path: Path) -> None:
    env = firebreak_env(
        f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        REDIS_URL=redis_url,
        FIREBREAK_ANNOUNCE_CHANNEL="#incidents",
        FIREBREAK_DATA_DIR=str(tmp_path / "data"),
    )
    code, out, err = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 1
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[-3].startswith("slack: FAILED could not reach http://127.0.0.1:")
    assert lines[-2] == "announce channel: FAILED #incidents: not checked, Slack is not reachable with this token"
    assert lines[-1] == "check: FAILED"


async def test_first_run_reports_every_missing_setting_at_once(tmp_path: Path) -> None:
    env = firebreak_env("http://127.0.0.1:9/api/")
    for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
        env.pop(key)
    code, out, err = await run_cli("serve", env=env, cwd=tmp_path)
    assert code == 2 and out == ""
    assert "SLACK_BOT_TOKEN is not set: Bot token (xoxb-...)" in err
    assert "SLACK_SIGNING_SECRET is not set: HTTP mode needs SLACK_SIGNING_SECRET" in err
    assert "`cp .env.example .env`" in err
    assert "Field required" not in err, "in the environment's words, not pydantic's"


async def test_unknown_announce_channel_name_exits_2(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    env = cli_env(slack, tmp_path, REDIS_URL=redis_url, FIREBREAK_ANNOUNCE_CHANNEL="#no-such-channel")
    code, _, err = await run_cli("serve", env=env, cwd=tmp_path)
    assert code == 2
    assert "FIREBREAK_ANNOUNCE_CHANNEL=#no-such-channel: Slack has no channel #no-such-channel" in err
    assert "Traceback" not in err


async def test_bad_environment_exits_2_with_the_fix(slack: SlackStandIn, tmp_path: Path) -> None:
    env = cli_env(slack, tmp_path, SLACK_BOT_TOKEN="not-a-token")
    code, _, err = await run_cli("serve", env=env, cwd=tmp_path)
    assert code == 2
    assert "SLACK_BOT_TOKEN: SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in err
    assert "README.md" in err


async def test_serve_runs_with_embedded_redis_and_stops_on_sigterm(slack: SlackStandIn, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(slack, tmp_path, FIREBREAK_HOST="127.0.0.1", FIREBREAK_PORT=str(port))
    proc = await start_cli("serve", env=env, cwd=tmp_path, stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", within=10)
        async with aiohttp.ClientSession() as session:
            body = (
                "command=%2Fincident&text=declare+sev2+From+a+real+process&user_id=UALICE&channel_id=CX"
                f"&trigger_id=t1&response_url={slack.response_url('p1')}"
            )
            headers = sign(body) | {"Content-Type": "application/x-www-form-urlencoded"}
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
                assert resp.status == 200
            forged = body.replace("From+a+real+process", "Forged+payroll+outage")
            forged_headers = sign(forged, secret="not-the-secret") | {
                "Content-Type": "application/x-www-form-urlencoded"
            }
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data=forged, headers=forged_headers) as r:
                assert r.status == 401
        await eventually(lambda: slack.responses, within=10, what="firebreak serve never replied to the declare")
        assert "Declared *INC-1*" in slack.responses[0]["text"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    log = out.decode()
    assert proc.returncode == 0, log
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log
    # A healthy start and stop: nothing alarming, no request body.
    for alarming in ("WARNING", "ERROR", "failed", "unused", "sigterm", "declare+sev2", "Forged", "payroll"):
        assert alarming not in log, f"{alarming!r} in the log of a healthy run:\n{log}"
    assert (tmp_path / "data" / "appendonly.aof").exists() or any((tmp_path / "data").iterdir())
