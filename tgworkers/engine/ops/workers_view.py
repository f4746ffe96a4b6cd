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
from tgworkers.engine.wire.replies import text


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


class WorkersView:
    """The workers page, over one connection and layout (built once, with the operator API)."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout

    async def rows(self) -> list[WorkerRow]:
        """Every worker with a heartbeat or jobs in flight, live ones first, by name."""
        layout = self.layout
        plan = [(p.queue, pk) for p in self.registry.processors.values()
                for pk in layout.partitions(p)]  # fmt: skip
        pipe: Any = self.redis.pipeline(transaction=False)
        pipe.zrange(layout.globals.workers, 0, -1, withscores=True)
        pipe.hgetall(layout.globals.worker_info)
        for _, pk in plan:
            pipe.xinfo_consumers(pk.ready, GROUP)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        rows = _beats(replies[0], now=int(time.time() * 1000))
        _add_info(rows, replies[1])
        for (queue, _), reply in zip(plan, replies[2:], strict=True):
            _add_consumers(rows, queue, reply)
        return sorted(rows.values(), key=lambda r: (r.heartbeat_ms is None, r.name))


def _beats(reply: Any, *, now: int) -> dict[str, WorkerRow]:
    rows: dict[str, WorkerRow] = {}
    for name, score in reply if not isinstance(reply, Exception) else []:
        beat, who = int(score), text(name)
        rows[who] = WorkerRow(name=who, heartbeat_ms=beat, heartbeat_age_ms=now - beat,
                              queues=[], inflight=0)  # fmt: skip
    return rows


def _add_consumers(rows: dict[str, WorkerRow], queue: str, reply: Any) -> None:
    if isinstance(reply, Exception):
        return
    for consumer in reply:
        name = text(consumer["name"])
        if name not in rows and not int(consumer.get("pending", 0)):
            continue  # a long-gone consumer the group still remembers
        gone = WorkerRow(name=name, heartbeat_ms=None, heartbeat_age_ms=None, queues=[], inflight=0)
        row = rows.setdefault(name, gone)
        if queue not in row.queues:
            row.queues.append(queue)
        row.inflight += int(consumer.get("pending", 0))


def _add_info(rows: dict[str, WorkerRow], reply: Any) -> None:
    if isinstance(reply, Exception):
        return
    for name, raw in reply.items():
        row = rows.get(text(name))
        if row is None:
            continue
        try:
            info = _info.decode(raw)
        except msgspec.DecodeError:
            continue
        row.version, row.host, row.started_ms = info.version, info.host, info.started_ms
        row.queues = list(info.processors)
