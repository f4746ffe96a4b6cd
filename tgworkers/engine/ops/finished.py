"""Finished jobs, for lookup: "did bet b_123 settle, when, after which attempt, which trace".

A job whose id the producer chose (`cfb.settle:b_123`; the ones deduplicated for
`DEDUPE_TTL_S`) leaves a small record when it finishes: when, the attempt and
deliveries it took, how long the last run took, its trace context, origin and
the consumer that ran it. Records live per partition (`PartitionKeys.finished`,
`finished_at`, `finished_ids`) and are forgotten after `DEDUPE_TTL_S`, so memory
is bounded like the dedupe set's. Random-id jobs leave none: nobody can ask for
them by a name they know.

Written after the settle, not in it: the runtime's settle observer
(`runtime/finished_log.py`) buffers the record and writes each partition's batch with one
script call
(`lua/finished_record.lua`) every `FLUSH_EVERY_S`. A worker killed in between
loses those records (the dedupe set still says the job is done); the settle
scripts stay as they are. A prefix search reads the lex index with ZRANGE BYLEX:
O(log n + page), never a scan.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.errors import InputError

FLUSH_EVERY_S: Final = 0.2
MAX_BUFFERED: Final = 10_000
"""Records waiting for a write; past it (Redis down for long) the oldest are dropped."""
FORGET_PER_CALL: Final = 500

encode_record = msgspec.json.Encoder().encode


class FinishedRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One finished job as `finished --json` and `GET /admin/v1/finished` show it."""

    id: str
    name: str
    queue: str
    finished_at: int
    attempt: int
    deliveries: int
    duration_ms: int
    enqueued_at: int
    traceparent: str | None = None
    origin: str | None = None
    consumer: str = ""

    @property
    def trace_id(self) -> str | None:
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None  # noqa: PLR2004


SORTS: Final = {"id": "id", "queue": "queue", "finishedAt": "finished_at",
                 "attempt": "attempt", "durationMs": "duration_ms"}  # fmt: skip
"""Columns a page may be sorted by (`-` before one: descending) and their fields."""


def sort_field(sort: str | None) -> tuple[str, bool] | None:
    """(field, descending) of a `sort` value; `InputError` naming the choices."""
    if not sort:
        return None
    name, descending = (sort[1:], True) if sort.startswith("-") else (sort, False)
    if name not in SORTS:
        choices = ", ".join(SORTS)
        raise InputError(f"sort: expected one of {choices} (with - for descending), got {sort!r}")
    return SORTS[name], descending


class FinishedPage(msgspec.Struct, frozen=True, kw_only=True):
    """`{"items": [...], "prefix", "limit"}`: ids starting with `prefix`, in id order."""

    items: list[FinishedRecord]
    prefix: str
    limit: int


_decode = msgspec.json.Decoder(FinishedRecord)


class FinishedJobs:
    """Finds finished jobs by id prefix, in one queue or in all."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout

    async def search(
        self, prefix: str, *, queue: str | None, limit: int, sort: str | None = None
    ) -> FinishedPage:
        """The first `limit` ids starting with `prefix` (id order), then sorted by `sort`."""
        order = sort_field(sort)
        procs = [self.registry.queue(queue)] if queue else list(self.registry.processors.values())
        low, high = f"[{prefix}", f"[{prefix}\xff"
        found: list[FinishedRecord] = []
        for proc in sorted(procs, key=lambda p: p.queue):
            for pk in self.layout.partitions(proc):
                ids: Any = await self.redis.zrangebylex(pk.finished_ids, low, high, 0, limit)
                if ids:
                    blobs: Any = await self.redis.hmget(pk.finished, ids)
                    found += [_decode.decode(b) for b in blobs if b]
        found.sort(key=lambda r: (r.id, r.queue))
        items = found[:limit]
        if order is not None:
            items.sort(key=lambda r: getattr(r, order[0]), reverse=order[1])
        return FinishedPage(items=items, prefix=prefix, limit=limit)
