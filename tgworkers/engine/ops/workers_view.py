"""The workers the console lists: heartbeat, version, processors, jobs in flight.

Read from what workers write: the registry sorted set (consumer -> last
heartbeat, refreshed every few seconds), the info hash each worker serving HTTP
refreshes with its version and processors (`publish_info`, every 20 s), and each
partition's XINFO CONSUMERS (pending count per consumer). One pipelined round
trip for all queues. A worker without HTTP publishes no info; its queues are then
the ones whose group knows it.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP


class WorkerRow(msgspec.Struct, kw_only=True):
    """One consumer as the workers page shows it."""

    name: str
    heartbeat_ms: int | None
    heartbeat_age_ms: int | None
    queues: list[str]
    inflight: int
    version: str = ""
    host: str = ""
    started_ms: int | None = None


class WorkerInfo(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What a worker serving HTTP publishes about itself."""

    version: str
    processors: list[str]
    host: str
    started_ms: int


_info = msgspec.json.Decoder(WorkerInfo)


async def publish_info(redis: Redis, layout: Layout, consumer: str, info: WorkerInfo) -> None:
    """Refresh this worker's info; drop entries of workers whose heartbeat is gone."""
    key = layout.globals.worker_info
    await redis.hset(key, consumer, msgspec.json.encode(info))
    known: Any = await redis.hkeys(key)
    live: Any = await redis.zrange(layout.globals.workers, 0, -1)
    gone = set(known) - set(live) - {consumer.encode()}
    if gone:
        await redis.hdel(key, *gone)


def _s(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


async def list_workers(redis: Redis, registry: Registry, layout: Layout) -> list[WorkerRow]:
    now = int(time.time() * 1000)
    pipe: Any = redis.pipeline(transaction=False)
    pipe.zrange(layout.globals.workers, 0, -1, withscores=True)
    pipe.hgetall(layout.globals.worker_info)
    plan = [(p.queue, pk) for p in registry.processors.values() for pk in layout.partitions(p)]
    for _, pk in plan:
        pipe.xinfo_consumers(pk.ready, GROUP)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    rows: dict[str, WorkerRow] = {}
    for name, score in replies[0] if not isinstance(replies[0], Exception) else []:
        beat = int(score)
        rows[_s(name)] = WorkerRow(name=_s(name), heartbeat_ms=beat, heartbeat_age_ms=now - beat,
                                   queues=[], inflight=0)  # fmt: skip
    _add_info(rows, replies[1])
    for (queue, _), reply in zip(plan, replies[2:], strict=True):
        if isinstance(reply, Exception):
            continue
        for consumer in reply:
            name = _s(consumer["name"])
            if name not in rows and not int(consumer.get("pending", 0)):
                continue  # a long-gone consumer the group still remembers
            row = rows.setdefault(
                name,
                WorkerRow(
                    name=name, heartbeat_ms=None, heartbeat_age_ms=None, queues=[], inflight=0
                ),
            )
            if queue not in row.queues:
                row.queues.append(queue)
            row.inflight += int(consumer.get("pending", 0))
    return sorted(rows.values(), key=lambda r: (r.heartbeat_ms is None, r.name))


def _add_info(rows: dict[str, WorkerRow], reply: Any) -> None:
    if isinstance(reply, Exception):
        return
    for name, raw in reply.items():
        row = rows.get(_s(name))
        if row is None:
            continue
        try:
            info = _info.decode(raw)
        except msgspec.DecodeError:
            continue
        row.version, row.host, row.started_ms = info.version, info.host, info.started_ms
        row.queues = list(info.processors)
