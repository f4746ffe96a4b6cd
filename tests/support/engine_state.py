"""Shared helpers for engine integration tests."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from tests.support.jobs import RUNS_KEY, RunRecord
from tgworkers.engine.wire.keys import PartitionKeys

_runs = msgspec.json.Decoder(RunRecord)


async def runs(redis: Redis) -> list[RunRecord]:
    return [_runs.decode(x) for x in await redis.lrange(RUNS_KEY, 0, -1)]


def pk(queue: str = "test.work", partition: int = 0) -> PartitionKeys:
    return PartitionKeys("tgw", queue, partition)


async def queue_state(redis: Redis, queue: str = "test.work", partition: int = 0) -> dict[str, Any]:
    k = pk(queue, partition)
    pending = 0
    if await redis.exists(k.ready):
        groups = await redis.xinfo_groups(k.ready)
        pending = sum(int(g["pending"]) for g in groups)
    return {
        "ready": await redis.xlen(k.ready) if await redis.exists(k.ready) else 0,
        "pending": pending,
        "delayed": await redis.zcard(k.delayed),
        "delayed_jobs": await redis.hlen(k.delayed_jobs),
        "jobs": await redis.hlen(k.jobs),
        "dlq": await redis.xlen(k.dlq) if await redis.exists(k.dlq) else 0,
    }


async def idle(redis: Redis, queue: str = "test.work", partition: int = 0) -> bool:
    s = await queue_state(redis, queue, partition)
    return s["ready"] == 0 and s["pending"] == 0 and s["delayed"] == 0
