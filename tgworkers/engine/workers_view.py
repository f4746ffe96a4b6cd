"""The workers the console lists: heartbeat, queues served and jobs in flight.

Read from what workers already write: the registry sorted set (consumer ->
last heartbeat, refreshed every few seconds) and each partition's XINFO
CONSUMERS (pending count per consumer). One pipelined round trip for all
queues. A worker does not record its version or processor list anywhere else,
so processors are the queues whose group knows the consumer.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.keys import GROUP
from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry


class WorkerRow(msgspec.Struct, kw_only=True):
    """One consumer as the workers page shows it."""

    name: str
    heartbeat_ms: int | None
    heartbeat_age_ms: int | None
    queues: list[str]
    inflight: int


def _s(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


async def list_workers(redis: Redis, registry: Registry, layout: Layout) -> list[WorkerRow]:
    now = int(time.time() * 1000)
    pipe: Any = redis.pipeline(transaction=False)
    pipe.zrange(layout.globals.workers, 0, -1, withscores=True)
    plan = [(p.queue, pk) for p in registry.processors.values() for pk in layout.partitions(p)]
    for _, pk in plan:
        pipe.xinfo_consumers(pk.ready, GROUP)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    rows: dict[str, WorkerRow] = {}
    for name, score in replies[0] if not isinstance(replies[0], Exception) else []:
        beat = int(score)
        rows[_s(name)] = WorkerRow(name=_s(name), heartbeat_ms=beat, heartbeat_age_ms=now - beat,
                                   queues=[], inflight=0)  # fmt: skip
    for (queue, _), reply in zip(plan, replies[1:], strict=True):
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
