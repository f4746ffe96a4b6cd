"""Redis connections, and the outage tracker every loop reports to.

Blocking stream reads get their own client whose socket timeout is longer than
the BLOCK time (redis-py 8 defaults to 5 s, which breaks blocking readers), so a
half-open TCP connection can never hang a reader forever, and a slow read never
holds a connection other commands wait for.

An outage is logged once when it begins (`redis.down`) and once when it ends
(`redis.up`, with its length); loops keep running and retry with jittered backoff.
"""

from __future__ import annotations

import random
import time
from typing import Final, cast

import anyio
import structlog
from redis import exceptions as rex
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

log = structlog.get_logger("tgworkers.redis")

CONNECTION_ERRORS: Final = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.BusyLoadingError,
    rex.ReadOnlyError,
    rex.TryAgainError,
    rex.ClusterDownError,
    OSError,
)


def _cluster(url: str, *, socket_timeout_s: float, max_connections: int) -> Redis:
    """A Redis Cluster client; every engine key of a partition is in one slot.

    Returned as `Redis`: the engine uses only commands both clients share (single-slot
    scripts, stream and hash commands), so the rest of the code needs no second type.
    """
    client = RedisCluster.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5.0,
        max_connections=max_connections,
        protocol=2,
    )
    return cast(Redis, client)


def connect(
    url: str, *, cluster: bool = False, socket_timeout_s: float = 10.0, max_connections: int = 128
) -> Redis:
    """A pooled client for short commands and scripts (bytes replies, RESP2).

    The pool *blocks* when all its connections are busy instead of raising "Too
    many connections" (redis-py 8 caps pools at 100), so a burst of handlers
    waits a few microseconds for a connection rather than failing an attempt.
    """
    if cluster:
        return _cluster(url, socket_timeout_s=socket_timeout_s, max_connections=max_connections)
    pool = BlockingConnectionPool.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5.0,
        max_connections=max_connections,
        timeout=socket_timeout_s,
        protocol=2,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=2),
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def connect_for_blocking(
    url: str, *, block_ms: int, max_connections: int = 4, cluster: bool = False
) -> Redis:
    """A client for blocking XREADGROUP: socket timeout = BLOCK + 5 s.

    Each processor's read loop holds one connection while it blocks, so the pool
    needs one per processor that may ever run in the process (per partition on a
    cluster, where each partition is read on its own).
    """
    if cluster:
        timeout_s = block_ms / 1000 + 5.0
        return _cluster(url, socket_timeout_s=timeout_s, max_connections=max_connections)
    return Redis.from_url(
        url,
        socket_timeout=block_ms / 1000 + 5.0,
        socket_connect_timeout=5.0,
        max_connections=max_connections,
        protocol=2,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=1),
    )


class RedisHealth:
    """Shared outage state: logs down once, up once, and paces retries."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._failures = 0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def ok(self) -> None:
        if self.down_since is not None:
            downtime_ms = int((time.monotonic() - self.down_since) * 1000)
            log.warning("redis.up", downtime_ms=downtime_ms)
            self.down_since = None
        self._failures = 0

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("redis.down", error=type(exc).__name__, detail=str(exc)[:200])
        self._failures += 1

    async def backoff(self) -> None:
        """Sleep a jittered, growing delay (50 ms to 5 s) before the next try."""
        ceiling = min(5.0, 0.05 * 2 ** min(self._failures, 7))
        await anyio.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311
