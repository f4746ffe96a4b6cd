"""A private `redis-server` on a free loopback port, in its own temp directory.

Shared by the `dev` command and the test suite (tests/support/redis_server.py
imports it), so both start Redis the same way: bound to 127.0.0.1, no RDB
snapshots, `noeviction` (queue keys must never be evicted), logs in the data
directory. The directory survives `restart()` so AOF tests see their data again;
`close()` kills the process and removes the directory, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tgworkers.errors import ConfigError

INSTALL_HINT = "apt-get install -y redis-server, or set REDIS_URL to a running Redis"


class RedisBinaryMissingError(ConfigError):
    """No `redis-server` on PATH and no reachable `REDIS_URL` (exit status 2)."""


def free_port() -> int:
    """A port the OS says is free now (the usual small race is accepted for dev and tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary() -> str:
    """The `redis-server` on PATH, or an error that says how to get one."""
    found = shutil.which("redis-server")
    if found is None:
        raise RedisBinaryMissingError(f"redis-server not found on PATH ({INSTALL_HINT})")
    return found


def reachable(url: str, *, timeout_s: float = 1.0) -> bool:
    """Whether a Redis answers PING at `url` (any connection-level failure is False)."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.exceptions.RedisError, OSError, ValueError):
        return False
    finally:
        client.close()


class RedisServer:
    """One redis-server process owned by its creator (the `dev` command or a test)."""

    def __init__(
        self, *, appendonly: bool = False, fsync: str = "always", binary: str | None = None
    ) -> None:
        self.binary = binary or find_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tgw-redis-"))
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        args = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.fsync, "--maxmemory-policy", "noeviction",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
        )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                with contextlib.suppress(redis.exceptions.ConnectionError):
                    if client.ping():
                        return
                time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {self.port} not ready in {timeout_s}s")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory: nothing is left behind."""
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class DevRedis:
    """The Redis `dev` runs on: a reachable `REDIS_URL`, or its own server (`owned`)."""

    url: str
    server: RedisServer | None = None

    @property
    def owned(self) -> bool:
        return self.server is not None


@contextlib.contextmanager
def private_redis(url: str | None) -> Iterator[DevRedis]:
    """Use `url` when a Redis answers there; else start one, and remove it on exit.

    Raises:
        RedisBinaryMissingError: no reachable `url` and no `redis-server` on PATH.
    """
    if url and reachable(url):
        yield DevRedis(url)
        return
    server = RedisServer()
    try:
        server.start()
        yield DevRedis(server.url, server)
    finally:
        server.close()
