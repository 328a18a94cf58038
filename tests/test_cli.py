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
        await eventually(lambda: slack.responses, within=10, what="firebreak serve never replied to the declare")
        assert "Declared *INC-1*" in slack.responses[0]["text"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, out.decode()
    assert BOT_TOKEN not in out.decode() and SIGNING_SECRET not in out.decode()
    assert (tmp_path / "data" / "appendonly.aof").exists() or any((tmp_path / "data").iterdir())
