"""The finish-record writer: the runtime's settle observer for the finished-job lookup.

What a record holds and how operators look it up is `ops/finished.py`; this half sees each
settle as it happens, so it lives with the runtime. Records are buffered and written per
partition with one script call every `FLUSH_EVERY_S` (`lua/finished_record.lua`); a worker
killed in between loses those records, not the jobs (the dedupe set still says done).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import anyio
import structlog
from redis.asyncio import Redis

from tgworkers.engine.live import Live
from tgworkers.engine.ops.finished import (
    FLUSH_EVERY_S,
    FORGET_PER_CALL,
    MAX_BUFFERED,
    FinishedRecord,
    encode_record,
)
from tgworkers.engine.runtime.settlement import Settlement
from tgworkers.engine.wire.connection import REDIS_ERRORS, RedisHealth, guarded
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.script_items import DoneItem
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.engine")


class FinishedLog:
    """Buffers finish records from the settle observer and writes them in batches."""

    def __init__(
        self, redis: Redis, live: Live[Any], consumer: str, health: RedisHealth, scripts: Scripts
    ) -> None:
        self.redis = redis
        self.live = live
        self.consumer = consumer
        self.health = health
        self._pending: dict[PartitionKeys, list[tuple[str, int, bytes]]] = defaultdict(list)
        self._count = 0
        self._wake = anyio.Event()
        self.scripts = scripts

    def observe(self, s: Settlement) -> None:
        """The runtime's settle observer: a DONE settle of a producer-chosen id."""
        item = s.item  # a DoneItem is a DONE settle's (called per job: no enum lookup)
        if type(item) is not DoneItem or not item.dedupe:
            return
        d = s.delivery
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
        self._pending[d.pk].append((env.id, now, encode_record(record)))
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
            await self.scripts.finished_record(
                pk, rows, keep_ms=keep_ms, forget_per_call=FORGET_PER_CALL
            )
