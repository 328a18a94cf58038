"""Real redis-server processes a test can restart, freeze (SIGSTOP) and fail over, on loopback ports."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import free_port, redis_binary


class RedisProcess:
    def __init__(self, workdir: Path, *, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        # appendonly with fsync always: a restart keeps everything, as a production Redis would
        command = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(self.workdir),
            *self.args,
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        self.wait_ready()
        return self

    def wait_ready(self, within: float = 10) -> None:
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + within
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on {self.port} did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def wait_replicas(self, count: int, within_ms: int = 10_000) -> int:
        """Redis's WAIT: block until `count` replicas have every write so far; returns how many have."""
        client = redis.Redis(port=self.port)
        try:
            return int(client.execute_command("WAIT", count, within_ms))  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if sig == signal.SIGTERM:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


class Sentinel:
    """One redis-server in sentinel mode watching `master`, quick to call a failover (for tests)."""

    def __init__(self, workdir: Path, master: RedisProcess, name: str = "mymaster") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.name = name
        conf = workdir / f"sentinel-{self.port}.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {name} 500\n"
            f"sentinel failover-timeout {name} 2000\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        self.proc = subprocess.Popen(  # noqa: S603
            [redis_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        RedisProcess(workdir, port=self.port).wait_ready()

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.name}/0"

    def master_port(self) -> int:
        client = redis.Redis(port=self.port, decode_responses=True)
        try:
            _, port = client.execute_command("SENTINEL", "get-master-addr-by-name", self.name)  # type: ignore[no-untyped-call]
            return int(port)
        finally:
            client.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
