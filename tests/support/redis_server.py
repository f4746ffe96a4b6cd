"""A real `redis-server` for tests: on a free port, restartable with its data.

Chosen in this order: `REDIS_URL` when given (shared; tests then flush per test),
a `redis-server` binary from PATH, a testcontainers Redis when Docker works.
The data directory survives `restart()`, so AOF tests see their data again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process owned by the tests."""

    def __init__(
        self, *, appendonly: bool = False, fsync: str = "always", binary: str | None = None
    ):
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server not found on PATH (apt-get install -y redis-server)")
        self.binary = found
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tgw-redis-"))
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.fsync, "--maxmemory-policy", "noeviction",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} not ready in {timeout_s}s")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class ContainerRedis:
    """Fallback: a Redis in Docker through testcontainers (when a daemon runs)."""

    def __init__(self) -> None:
        from testcontainers.redis import RedisContainer

        self._c = RedisContainer("redis:7-alpine")
        self._c.start()
        host = self._c.get_container_host_ip()
        self.url = f"redis://{host}:{self._c.get_exposed_port(6379)}/0"

    def close(self) -> None:
        self._c.stop()


def docker_usable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=5, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def session_redis() -> tuple[str, object | None]:
    """(url, owner) for the session: REDIS_URL, else redis-server, else a container."""
    if url := os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL"):
        return url, None
    if shutil.which("redis-server"):
        server = RedisServer()
        server.start()
        return server.url, server
    if docker_usable():
        container = ContainerRedis()
        return container.url, container
    raise RuntimeError("no Redis for tests: install redis-server, run Docker, or set REDIS_URL")
