"""Jobs on the time axis: what waits and until when, what is busy, and moving time.

The testing harness (`tgworkers.testing.harness`) runs the real engine with the test
in charge of time. Redis keeps real time, so to move a test's time forward `shift`
moves every delayed job's due time and every dedupe record's time earlier by the
step instead; `busy` tells `drain` whether a queue has work left, and `waiting` lists
what is queued for `assert_enqueued`. They read and write the partitions' keys and the
delayed records' format, which the operator API owns and the front ends do not know.

Test-only: `shift` on a production queue would run delayed jobs early and end dedupe
windows early, so no command or console page calls it, and `EngineServices` does not
hold a `Timeline` (the harness builds one over the worker's connection and layout).
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.envelope import fields_from_json
from tgworkers.engine.wire.keys import PartitionKeys


class Busy(msgspec.Struct, frozen=True, kw_only=True):
    """How much of a queue is left to run, read per partition in one MULTI."""

    jobs: int
    """Ready or running (a ready entry stays until settled), plus delayed ones already due."""
    earliest_due_ms: int | None
    """The first delayed job's due time (Redis's clock), None when nothing is delayed."""
    now_ms: int
    """Redis's clock when the last partition was read."""


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """A job waiting in a queue: its stream fields and when it was queued or is due."""

    queue: str
    fields: dict[bytes, bytes]
    at_ms: int
    """A ready entry's time or a delayed job's due time, on Redis's clock."""
    delayed: bool


class Timeline:
    """The waiting, busy and shift operations over one connection, registry and layout."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout

    def _partitions(self, queue: str | None) -> list[PartitionKeys]:
        procs = [self.registry.queue(queue)] if queue else self.registry.processors.values()
        return [pk for proc in procs for pk in self.layout.partitions(proc)]

    async def busy(self, queue: str | None = None) -> Busy:
        """Jobs of `queue` (default: all) ready, running or due; a job being promoted is seen."""
        jobs, earliest, now_ms = 0, None, 0
        for pk in self._partitions(queue):
            async with self.redis.pipeline(transaction=True) as pipe:
                tx: Any = pipe  # queued commands are not awaited one by one
                tx.time()
                tx.xlen(pk.ready)  # every settle deletes its entry: what is left is live
                tx.zrange(pk.delayed, 0, 0, withscores=True)
                replies: Any = await tx.execute()
            (seconds, micros), live, first = replies
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            jobs += int(live)
            for _, score in first:
                jobs += int(score) <= now_ms
                earliest = int(score) if earliest is None else min(earliest, int(score))
        return Busy(jobs=jobs, earliest_due_ms=earliest, now_ms=now_ms)

    async def waiting(self, queue: str | None = None) -> list[Waiting]:
        """Jobs of `queue` (default: all) ready or running, then delayed, per partition."""
        jobs = []
        for pk in self._partitions(queue):
            entries: Any = await self.redis.xrange(pk.ready)
            for entry_id, fields in entries:
                at_ms = int(entry_id.split(b"-")[0])
                jobs.append(Waiting(queue=pk.queue, fields=fields, at_ms=at_ms, delayed=False))
            delayed: Any = await self.redis.zrange(pk.delayed, 0, -1, withscores=True)
            for job_id, due in delayed:
                raw: Any = await self.redis.hget(pk.delayed_jobs, job_id)
                if raw is not None:
                    fields = fields_from_json(raw)
                    jobs.append(
                        Waiting(queue=pk.queue, fields=fields, at_ms=int(due), delayed=True)
                    )
        return jobs

    async def shift(self, step_ms: int) -> None:
        """Move every delayed job's due time and every dedupe record's time `step_ms` earlier."""
        for pk in self._partitions(None):
            for key in (pk.delayed, pk.done):
                members: Any = await self.redis.zrange(key, 0, -1, withscores=True)
                if members:
                    await self.redis.zadd(key, {m: s - step_ms for m, s in members}, xx=True)
