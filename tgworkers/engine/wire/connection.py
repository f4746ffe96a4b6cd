"""Redis connections, and the outage tracker every loop reports to.

Blocking stream reads get their own client whose socket timeout is longer than
the BLOCK time (redis-py 8 defaults to 5 s, which breaks blocking readers), so a
half-open TCP connection can never hang a reader forever, and a slow read never
holds a connection other commands wait for.

An outage is logged once when it begins (`redis.down`) and once when it ends
(`redis.up`, with its length); loops keep running and retry with jittered backoff.
Any Redis error counts, not only lost connections (promise 13): out of memory at
`maxmemory`, READONLY during a failover, LOADING, BUSY scripts, cluster
redirections, a stream or group deleted under a reader. Each kind of error is
logged at most once a minute (`redis.error`, with how many were suppressed) and
counted, so a worker that cannot write says so without flooding its log.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, cast

import anyio
import structlog
from redis import exceptions as rex
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from tgworkers.engine.wire.cluster_client import EngineCluster
from tgworkers.engine.wire.streams import stream_rows

log = structlog.get_logger("tgworkers.redis")

T = TypeVar("T")

CONNECTION_ERRORS: Final = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.BusyLoadingError,
    rex.ReadOnlyError,
    rex.TryAgainError,
    rex.ClusterDownError,
    rex.RedisClusterException,
    OSError,
)

REDIS_ERRORS: Final = (rex.RedisError, rex.RedisClusterException, OSError)
"""What every engine loop survives: any error a Redis command can raise (promise 13).

redis-py's `RedisClusterException` (slots not covered, no reachable node) is not a
`RedisError`; a cluster that is down raises it from the client's topology refresh.
"""

ERROR_LOG_INTERVAL_S: Final = 60.0


def error_kind(exc: BaseException) -> str:
    """A short, secret-free name for an error: its class and Redis's error code.

    `ResponseError('OOM command not allowed ...')` is `ResponseError:OOM`; the rest
    of the message (which may name keys) stays out of the kind.
    """
    name = type(exc).__name__
    if isinstance(exc, rex.ResponseError) and (text := str(exc)):
        code = text.split(" ", 1)[0]
        if code.isupper() and code.isalpha():
            return f"{name}:{code}"
    return name


def _cluster(url: str, *, socket_timeout_s: float, max_connections: int) -> Redis:
    """A Redis Cluster client; every engine key of a partition is in one slot.

    `EngineCluster` (engine/wire/cluster_client.py): a topology refresh never closes a
    socket under a command in flight, which redis-py's own client does.

    Returned as `Redis`: the engine uses only commands both clients share (single-slot
    scripts, stream and hash commands), so the rest of the code needs no second type.
    """
    client = EngineCluster.from_url(
        url,
        reinitialize_steps=0,  # each MOVED patches its slot; no periodic full reset
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
    client = Redis.from_url(
        url,
        socket_timeout=block_ms / 1000 + 5.0,
        socket_connect_timeout=5.0,
        max_connections=max_connections,
        protocol=2,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=1),
    )
    # a read's entries paired in one pass, in redis-py's shape (streams.py)
    client.set_response_callback("XREADGROUP", stream_rows)
    return client


class RedisHealth:
    """Shared outage state: logs down once, up once, counts errors, paces retries.

    Each loop reports under its own name, and Redis counts as up only when no loop
    is failing: at `maxmemory` reads still succeed while every write fails, and a
    successful read must not hide the failing writes from `/readyz`.
    """

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._failing: dict[str, str] = {}
        self._failures = 0
        self.errors: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    @property
    def up(self) -> bool:
        return self.down_since is None

    @property
    def failing(self) -> dict[str, str]:
        """Loops failing now, with the kind of their last error (for /readyz)."""
        return dict(self._failing)

    def ok(self, loop: str = "redis") -> None:
        if self._failing.pop(loop, None) is not None and not self._failing:
            assert self.down_since is not None  # noqa: S101 - set with the first failure
            downtime_ms = int((time.monotonic() - self.down_since) * 1000)
            log.warning("redis.up", downtime_ms=downtime_ms)
            self.down_since = None
        if not self._failing:
            self._failures = 0

    def failed(self, exc: BaseException, loop: str = "redis") -> None:
        kind = error_kind(exc)
        now = time.monotonic()
        self._failing[loop] = kind
        if self.down_since is None:
            self.down_since = now
            log.error("redis.down", error=kind, loop=loop, detail=str(exc)[:200])
            self._logged_at[kind] = now
        self._failures += 1
        self.errors[kind] += 1
        last = self._logged_at.get(kind)
        if last is None or now - last >= ERROR_LOG_INTERVAL_S:
            log.error("redis.error", error=kind, loop=loop, detail=str(exc)[:200],
                      suppressed=self._suppressed.pop(kind, 0))  # fmt: skip
            self._logged_at[kind] = now
        elif last != now:
            self._suppressed[kind] += 1

    async def backoff(self) -> None:
        """Sleep a jittered, growing delay (50 ms to 5 s) before the next try."""
        ceiling = min(5.0, 0.05 * 2 ** min(self._failures, 7))
        await anyio.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311

    def unexpected(self, loop: str, exc: BaseException) -> None:
        """A bug, not an outage: logged with its traceback once a minute per loop and kind."""
        kind = f"{loop}:{type(exc).__name__}"
        self.errors[kind] += 1
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is None or now - last >= ERROR_LOG_INTERVAL_S:
            self._logged_at[kind] = now
            log.error("loop.error", loop=loop, error=type(exc).__name__, exc_info=exc,
                      suppressed=self._suppressed.pop(kind, 0))  # fmt: skip
        else:
            self._suppressed[kind] += 1


async def guarded(
    health: RedisHealth, loop: str, body: Callable[..., Awaitable[T]], *args: object
) -> T | None:
    """One iteration of an engine loop that nothing can end (promise 13).

    A Redis error is an outage (tracked, backed off); any other exception is a bug,
    logged and paced at one second, so a loop never dies and never spins. Returns
    None when the iteration failed.
    """
    try:
        result = await body(*args)
    except REDIS_ERRORS as exc:
        health.failed(exc, loop)
        await health.backoff()
    except Exception as exc:  # noqa: BLE001 - the loop must outlive its bugs; logged
        health.unexpected(loop, exc)
        await anyio.sleep(1.0)
    else:
        health.ok(loop)
        return result
    return None
