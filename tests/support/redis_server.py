"""A real `redis-server` for tests: on a free port, restartable with its data.

Chosen in this order: `TEST_REDIS_URL`/`REDIS_URL` when given (shared; tests then
flush per test), else a `redis-server` binary from PATH (scripts/setup-env installs
one with apt). There is no Docker fallback: the cluster, restart and AOF tests need
a local binary anyway, and setup-env stops before pytest when none can be had.
The data directory survives `restart()`, so AOF tests see their data again.
`RedisServer` itself lives in `tgworkers.devstack.redis`, shared with `dev`.
"""

from __future__ import annotations

import os
import shutil

from tgworkers.devstack.redis import RedisServer, free_port

__all__ = ["RedisServer", "free_port", "session_redis"]


def session_redis() -> tuple[str, RedisServer | None]:
    """(url, owner) for the session: REDIS_URL, else a redis-server of our own."""
    if url := os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL"):
        return url, None
    if shutil.which("redis-server"):
        server = RedisServer()
        server.start()
        return server.url, server
    raise RuntimeError("no Redis for tests: install redis-server or set REDIS_URL")
