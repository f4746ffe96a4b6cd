"""A real `redis-server` for tests: on a free port, restartable with its data.

Chosen in this order: `REDIS_URL` when given (shared; tests then flush per test),
a `redis-server` binary from PATH, a testcontainers Redis when Docker works.
The data directory survives `restart()`, so AOF tests see their data again.
`RedisServer` itself lives in `tgworkers.devstack.redis`, shared with `dev`.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tgworkers.devstack.redis import RedisServer, free_port

__all__ = ["ContainerRedis", "RedisServer", "docker_usable", "free_port", "session_redis"]


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


def session_redis() -> tuple[str, RedisServer | ContainerRedis | None]:
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
