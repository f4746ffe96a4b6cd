"""Each queue's partition count, recorded in Redis so every process agrees (promise 12).

A job's partition is `partition_of(key, count)`, so two processes configured with
different counts (`PARTITIONS_<P>`) place the same job id or exclusive key in
different partitions: dedupe and per-key exclusivity silently break. The first
process to meet a queue records its count (`HSETNX {prefix}:partitions`); every
later one compares:

- a worker with another count refuses to start (`ConfigError`, exit 2, naming the
  variable and both fixes); one whose count stops matching while it runs (someone
  ran `tgworkers repartition`) holds that queue (hands out none of its jobs, as if
  paused) and says so once;
- a producer checks a queue before its first enqueue and again at most once a
  second; while a repartition moves the queue (`<old>><new>`) it waits for the
  move to finish, then refuses if its count is not the new one.

Acknowledgement (the repartition protocol): `repartition` raises an epoch after it
marks a queue; every worker reads the epoch *before* the pause flags and records
it polls, applies them, then echoes the epoch under its consumer name. An echoed
epoch E therefore means "I have seen every mark made before E and start no new
delivery of a held queue", so nothing moves before every live worker has said so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

import anyio
import structlog
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Processor
from tgworkers.engine.wire.replies import text
from tgworkers.errors import ConfigError

log = structlog.get_logger("tgworkers.partitions")

RECHECK_S: Final = 1.0
"""A producer re-reads a queue's record at most this often (repartition waits longer)."""
MOVE_WAIT_S: Final = 60.0


def moving(record: str) -> tuple[int, int] | None:
    """(old, new) when the record says a repartition is under way."""
    old, sep, new = record.partition(">")
    return (int(old), int(new)) if sep else None


def mismatch_error(proc: Processor, mine: int, record: str) -> ConfigError:
    var = f"PARTITIONS_{proc.env_name}"
    if (move := moving(record)) is not None:
        return ConfigError(
            f"{var}: queue {proc.queue} is being repartitioned from {move[0]} to {move[1]}; "
            f"start this process with {var}={move[1]} once `tgworkers repartition` has finished"
        )
    return ConfigError(
        f"{var}: this process has {mine} partitions for queue {proc.queue} but Redis records "
        f"{record}; set {var}={record}, or change the count with "
        f"`tgworkers repartition {proc.queue} {mine}` first"
    )


class PartitionRecords:
    """Reads, claims and compares the recorded partition counts."""

    def __init__(self, redis: Redis, layout: Layout) -> None:
        self.redis = redis
        self.layout = layout
        self.key = layout.globals.partitions
        self._checked: dict[str, float] = {}
        self._held: set[str] = set()

    async def epoch(self) -> int:
        """The repartition epoch; read it before the flags and records it acknowledges."""
        raw = await self.redis.get(self.layout.globals.partitions_epoch)
        return int(raw) if raw is not None else 0

    async def acknowledge(self, consumer: str, epoch: int) -> None:
        await self.redis.hset(self.layout.globals.partitions_acks, consumer, epoch)

    async def records(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.key)
        return {text(k): text(v) for k, v in raw.items()}

    async def claim(self, procs: Iterable[Processor]) -> None:
        """Record our count where none is, then refuse if any record differs (start-up)."""
        procs = list(procs)
        for proc in procs:
            await self.redis.hsetnx(self.key, proc.queue, self.layout.partition_count(proc))
        records = await self.records()
        for proc in procs:
            mine = self.layout.partition_count(proc)
            if records.get(proc.queue, str(mine)) != str(mine):
                raise mismatch_error(proc, mine, records[proc.queue])

    async def check(self, procs: Iterable[Processor]) -> None:
        """Refuse (ConfigError) when a recorded count differs from ours; records nothing.

        For operator commands: `stats` or `drain` with a stale count would read the
        wrong partitions and report or delete too little, silently.
        """
        records = await self.records()
        for proc in procs:
            mine = self.layout.partition_count(proc)
            if records.get(proc.queue, str(mine)) != str(mine):
                raise mismatch_error(proc, mine, records[proc.queue])

    async def held(self, procs: Iterable[Processor]) -> set[str]:
        """Queues whose record is not our count: a running worker hands out none of their jobs."""
        records = await self.records()
        out: set[str] = set()
        for proc in procs:
            record = records.get(proc.queue)
            mine = self.layout.partition_count(proc)
            if record is not None and record != str(mine):
                out.add(proc.queue)
                if proc.queue not in self._held:  # said once per change, not every poll
                    log.error(
                        "partitions.mismatch",
                        queue=proc.queue,
                        error=str(mismatch_error(proc, mine, record)),
                    )
        self._held = out
        return out

    async def check_producer(self, proc: Processor) -> None:
        """Before enqueueing: our count is the recorded one (re-read at most once a second)."""
        now = time.monotonic()
        if now - self._checked.get(proc.queue, -RECHECK_S) < RECHECK_S:
            return
        mine = self.layout.partition_count(proc)
        deadline = now + MOVE_WAIT_S
        while True:
            if await self.redis.hsetnx(self.key, proc.queue, mine):
                break
            raw = await self.redis.hget(self.key, proc.queue)
            record = text(raw) if raw is not None else str(mine)
            if record == str(mine):
                break
            if moving(record) is None or time.monotonic() > deadline:
                raise mismatch_error(proc, mine, record)
            await anyio.sleep(0.1)  # a repartition is moving the queue: wait for its end
        self._checked[proc.queue] = time.monotonic()
