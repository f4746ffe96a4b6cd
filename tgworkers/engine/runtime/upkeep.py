"""A worker's own chores with Redis, beside its runtimes' loops.

1. `heartbeat`: say this consumer is alive in the workers registry (a write, so it
   also tells /readyz whether writes work); entries an hour old are dropped;
2. `listen_for_wakeups`: Pub/Sub, so a delayed job earlier than any known wakes its
   runtime's promoter at once rather than at its next timer;
3. `check_eviction_policy`: warn at start when Redis may evict queue keys.

The worker (worker.py) decides when each runs; these say what each does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import structlog
from redis.asyncio import Redis

from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.wire.connection import REDIS_ERRORS, RedisHealth

log = structlog.get_logger("tgworkers.worker")

HEARTBEAT_KEEP_MS = 3_600_000
"""Registry entries older than this are removed by every heartbeat."""


async def heartbeat(redis: Redis, key: str, consumer: str) -> None:
    """Say `consumer` is alive now in the workers registry `key`."""
    now_ms = int(time.time() * 1000)
    await redis.zadd(key, {consumer: now_ms})
    await redis.zremrangebyscore(key, "-inf", now_ms - HEARTBEAT_KEEP_MS)


async def listen_for_wakeups(
    redis: Redis, runtimes: Iterable[ProcessorRuntime], health: RedisHealth
) -> None:
    """Wake a runtime's promoter on each message to one of its partitions' channels.

    Runs until cancelled, resubscribing after any Redis error (with the worker's backoff).
    """
    by_channel = {pk.wake_channel.encode(): rt for rt in runtimes for pk in rt.partitions}
    if not by_channel:
        return
    while True:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(*by_channel)
            health.ok("pubsub")
            async for message in pubsub.listen():
                rt = by_channel.get(bytes(message.get("channel") or b""))
                if rt is not None and message.get("type") == "message":
                    rt.wake_promoter()
        except REDIS_ERRORS as exc:
            health.failed(exc, "pubsub")
            await health.backoff()
        finally:
            # typed from redis-py 8.2 on, untyped before: the cast keeps both releases
            # of the supported range (pyproject) passing mypy
            await cast("Callable[[], Awaitable[None]]", pubsub.aclose)()


async def check_eviction_policy(redis: Redis) -> None:
    """Warn when Redis may evict keys at `maxmemory`: queue keys would go with them."""
    try:
        info: dict[Any, Any] = await redis.config_get("maxmemory-policy")
    except Exception:  # noqa: BLE001 - CONFIG may be disabled (managed Redis); only a warning
        return
    policy = info.get(b"maxmemory-policy") or info.get("maxmemory-policy")
    if policy not in (b"noeviction", "noeviction"):
        advice = "set maxmemory-policy noeviction, or queue keys can be evicted"
        log.warning("redis.eviction_policy", policy=policy, advice=advice)
