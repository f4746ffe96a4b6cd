"""Finished jobs, for lookup: "did bet b_123 settle, when, after which attempt, which trace".

A job whose id the producer chose (`cfb.settle:b_123`; the ones deduplicated for
`DEDUPE_TTL_S`) leaves a small record when it finishes: when, the attempt and
deliveries it took, how long the last run took, its trace context, origin and
the consumer that ran it. Records live per partition (`PartitionKeys.finished`,
`finished_at`, `finished_ids`) and are forgotten after `DEDUPE_TTL_S`, so memory
is bounded like the dedupe set's. Random-id jobs leave none: nobody can ask for
them by a name they know.

Written after the settle, not in it: the runtime's settle observer buffers the
record and `FinishedLog.run` writes each partition's batch with one script call
(`lua/finished_record.lua`) every `FLUSH_EVERY_S`. A worker killed in between
loses those records (the dedupe set still says the job is done); the settle
scripts stay as they are. A prefix search reads the lex index with ZRANGE BYLEX:
O(log n + page), never a scan.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Final

import anyio
import msgspec
import structlog
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.executor import SettleKind, Settlement
from tgworkers.engine.wire.connection import REDIS_ERRORS, RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.scripts import DoneItem, script_text
from tgworkers.errors import InputError

log = structlog.get_logger("tgworkers.engine")

FLUSH_EVERY_S: Final = 0.2
MAX_BUFFERED: Final = 10_000
"""Records waiting for a write; past it (Redis down for long) the oldest are dropped."""
FORGET_PER_CALL: Final = 500

_encoder = msgspec.json.Encoder()


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


class FinishedLog:
    """Buffers finish records from the settle observer and writes them in batches."""

    def __init__(self, redis: Redis, live: Live[Any], consumer: str, health: RedisHealth) -> None:
        self.redis = redis
        self.live = live
        self.consumer = consumer
        self.health = health
        self._pending: dict[PartitionKeys, list[tuple[str, int, bytes]]] = defaultdict(list)
        self._count = 0
        self._wake = anyio.Event()
        self._script = redis.register_script(script_text("finished_record"))

    def observe(self, s: Settlement) -> None:
        """The runtime's settle observer: a DONE settle of a producer-chosen id."""
        d, item = s.delivery, s.item
        if s.kind is not SettleKind.DONE or not isinstance(item, DoneItem) or not item.dedupe:
            return
        env = d.envelope
        if env is None:
            return
        now = int(time.time() * 1000)
        record = FinishedRecord(
            id=env.id, name=env.name, queue=d.pk.queue, finished_at=now, attempt=env.attempt,
            deliveries=d.deliveries, duration_ms=round(s.duration_s * 1000),
            enqueued_at=env.enqueued_ms, traceparent=env.traceparent, origin=env.origin,
            consumer=self.consumer,
        )  # fmt: skip
        if self._count >= MAX_BUFFERED:
            return  # Redis has been down for long: newer records wait their turn, not memory
        self._pending[d.pk].append((env.id, now, _encoder.encode(record)))
        self._count += 1
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                await anyio.sleep(FLUSH_EVERY_S)  # one batch for every job finished meanwhile
                await guarded(self.health, "finished", self.flush_once)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await self.flush_once()  # what finished before a clean shutdown
                except REDIS_ERRORS:
                    log.warning("finished.unwritten", records=self._count)

    async def flush_once(self) -> None:
        batch, self._pending, self._count = self._pending, defaultdict(list), 0
        keep_ms = self.live.value.dedupe_ttl_s * 1000
        for pk, rows in batch.items():
            args: list[Any] = [keep_ms, FORGET_PER_CALL]
            for job_id, at, blob in rows:
                args += [job_id, at, blob]
            await self._script(keys=[pk.finished, pk.finished_at, pk.finished_ids], args=args)


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
