"""Real prometheus and prometheus-alertmanager processes on free loopback ports, and an exporter a test sets."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.conftest import free_port

# The tests' rule: a model server's `up` gauge at 0 pages at once, with the scope and runbook a good alert carries.
MODEL_SERVER_DOWN = """
groups:
  - name: firebreak-test
    rules:
      - alert: ModelServerDown
        expr: model_server_up == 0
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.model }} on {{ $labels.pool }} is down for {{ $labels.service }}"
          runbook_url: https://runbooks.example.com/model-server-down
"""


def binary(*names: str) -> str:
    """The first of `names` on PATH; the tests fail, saying how to install it, when there is none."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{names[0]} is not installed: run scripts/system-deps.sh (make test runs it)", pytrace=False)


class Exporter:
    """An in-process /metrics endpoint in the Prometheus text format, serving gauges the test sets."""

    def __init__(self) -> None:
        self.port = 0
        self.scrapes = 0
        self._scraped = asyncio.Condition()
        self._gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], tuple[float, float, float]]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def target(self) -> str:
        """host:port, as a Prometheus static target."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        self._gauges.setdefault(name, {})[tuple(sorted((labels or {}).items()))] = value

    def grow(self, name: str, per_second: float, labels: Mapping[str, str] | None = None) -> None:
        """A counter rising at `per_second` from where it is now, so `rate()` over it reads `per_second`."""
        key = tuple(sorted((labels or {}).items()))
        series = self._counters.setdefault(name, {})
        now = time.monotonic()
        series[key] = (self._count(series.get(key), now), per_second, now)

    @staticmethod
    def _count(state: tuple[float, float, float] | None, now: float) -> float:
        if state is None:
            return 0.0
        base, per_second, since = state
        return base + per_second * (now - since)

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Stop exporting one series (Prometheus sees it go stale), or with no labels, the whole gauge."""
        if labels is None:
            self._gauges.pop(name, None)
        else:
            self._gauges.get(name, {}).pop(tuple(sorted(labels.items())), None)

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self._gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            for labels, value in sorted(series.items()):
                pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{pairs}}} {float(value)!r}" if pairs else f"{name} {float(value)!r}")
        now = time.monotonic()
        for name, counters in sorted(self._counters.items()):
            lines.append(f"# TYPE {name} counter")
            for labels, state in sorted(counters.items()):
                pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{pairs}}} {self._count(state, now)!r}")
        return "\n".join(lines) + "\n"

    async def scraped(self, within: float = 15) -> None:
        """Wait for the next scrape. A new Prometheus takes 5 to 10 s to scrape at all (its discovery and scrape
        managers each pass on new targets on a fixed 5 s tick), so a test that needs data waits for this first."""
        seen = self.scrapes
        async with asyncio.timeout(within), self._scraped:
            await self._scraped.wait_for(lambda: self.scrapes > seen)

    async def _metrics(self, request: web.Request) -> web.Response:
        async with self._scraped:
            self.scrapes += 1
            self._scraped.notify_all()
        return web.Response(text=self.render(), content_type="text/plain")

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Server:
    """One server process: its config, data and log in `workdir`; up when /-/ready answers 200; stopped by SIGTERM."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / f"{self.name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    async def start(self, within: float = 20) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*self.command(), stdout=log, stderr=log)
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/-/ready") as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"{self.name} not ready within {within:g} s:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    async def stop(self, within: float = 10) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for failure messages (the whole log stays in the test's tmp dir)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def get_json(self, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


@dataclass(frozen=True)
class Timing:
    """How fast alerts move. Prometheus scrapes and evaluates every `interval`; Alertmanager's durations as named."""

    interval: str = "1s"
    group_wait: str = "1s"
    group_interval: str = "1s"
    repeat_interval: str = "1h"


FAST = Timing()


class Alertmanager(Server):
    """Alertmanager, one route to one webhook receiver (bearer token, resolved notifications too), no clustering."""

    name = "alertmanager"

    def __init__(
        self,
        workdir: Path,
        *,
        webhook_url: str,
        token: str,
        group_by: Sequence[str] = ("alertname", "service"),
        timing: Timing = FAST,
    ) -> None:
        super().__init__(workdir)
        self.config = workdir / "alertmanager.yml"
        receiver = {
            "name": "firebreak",
            "webhook_configs": [
                {
                    "url": webhook_url,
                    "send_resolved": True,
                    "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                }
            ],
        }
        route = {
            "receiver": "firebreak",
            "group_by": list(group_by),
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.repeat_interval,
        }
        self.config.write_text(yaml.safe_dump({"route": route, "receivers": [receiver]}, sort_keys=False))

    def command(self) -> list[str]:
        return [
            binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",  # no gossip port, no waiting for peers to settle
        ]

    async def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (API v2)."""
        found: list[dict[str, Any]] = await self.get_json("/api/v2/alerts")
        return found


class Prometheus(Server):
    """Prometheus scraping static targets, evaluating one rule file, and sending its alerts to an Alertmanager
    (or, with no Alertmanager, only scraping: what the evidence panel queries)."""

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        *,
        rules: str = "",
        targets: Sequence[str],
        alertmanager: str | None = None,
        timing: Timing = FAST,
    ) -> None:
        super().__init__(workdir)
        self.config = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": timing.interval,
                "scrape_timeout": timing.interval,
                "evaluation_interval": timing.interval,
            },
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": list(targets)}]}],
        }
        if rules:
            (workdir / "rules.yml").write_text(rules)
            config["rule_files"] = ["rules.yml"]
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def command(self) -> list[str]:
        return [
            binary("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
        ]

    async def alerts(self) -> list[dict[str, Any]]:
        """Prometheus's active alerts (pending and firing)."""
        body: dict[str, Any] = await self.get_json("/api/v1/alerts")
        found: list[dict[str, Any]] = body["data"]["alerts"]
        return found


@dataclass(frozen=True)
class PromStack:
    prometheus: Prometheus
    alertmanager: Alertmanager


@contextlib.asynccontextmanager
async def prom_stack(
    workdir: Path,
    *,
    rules: str,
    targets: Sequence[str],
    webhook_url: str,
    token: str,
    group_by: Sequence[str] = ("alertname", "service"),
    timing: Timing = FAST,
) -> AsyncIterator[PromStack]:
    """Alertmanager delivering to `webhook_url` with `token`, then Prometheus evaluating `rules` over `targets`."""
    am = Alertmanager(workdir / "alertmanager", webhook_url=webhook_url, token=token, group_by=group_by, timing=timing)
    async with am:
        prom = Prometheus(
            workdir / "prometheus", rules=rules, targets=targets, alertmanager=f"127.0.0.1:{am.port}", timing=timing
        )
        async with prom:
            yield PromStack(prom, am)


class StartPromStack(Protocol):
    """What the start_prom_stack fixture hands a test: prom_stack's parameters, less the directory."""

    def __call__(
        self,
        *,
        rules: str,
        targets: Sequence[str],
        webhook_url: str,
        token: str,
        group_by: Sequence[str] = ...,
        timing: Timing = ...,
    ) -> Awaitable[PromStack]: ...


@pytest.fixture
async def prom_exporter() -> AsyncIterator[Exporter]:
    """A started Exporter; Prometheus scrapes it with `targets=[prom_exporter.target]`."""
    async with Exporter() as exporter:
        yield exporter


@pytest.fixture
async def prometheus(tmp_path: Path, prom_exporter: Exporter) -> AsyncIterator[Prometheus]:
    """Prometheus alone, scraping `prom_exporter` every second; started, not yet scraped (`prom_exporter.scraped`)."""
    async with Prometheus(tmp_path / "prometheus", targets=[prom_exporter.target]) as prom:
        yield prom


@pytest.fixture
async def start_prom_stack(tmp_path: Path) -> AsyncIterator[StartPromStack]:
    """`await start_prom_stack(rules=..., targets=..., webhook_url=..., token=...)`: a PromStack, stopped after."""
    async with contextlib.AsyncExitStack() as stack:
        started = 0

        async def start(
            *,
            rules: str,
            targets: Sequence[str],
            webhook_url: str,
            token: str,
            group_by: Sequence[str] = ("alertname", "service"),
            timing: Timing = FAST,
        ) -> PromStack:
            nonlocal started
            started += 1
            workdir = tmp_path / f"prom-stack-{started}"
            return await stack.enter_async_context(
                prom_stack(
                    workdir,
                    rules=rules,
                    targets=targets,
                    webhook_url=webhook_url,
                    token=token,
                    group_by=group_by,
                    timing=timing,
                )
            )

        yield start
