"""`repartition QUEUE N`: change a queue's partition count without breaking its promises.

A job's partition is `partition_of(key, count)`, so a new count moves job ids and
exclusive keys to other partitions; dedupe (promise 5) and per-key exclusivity
(promise 6) hold only if each job's state moves with it, and a job must never run
in two places at once. The move is a protocol between this command and every live
worker (those whose heartbeat is fresh):

1. pause the queue, mark its record `<old>><new>` (every worker holds it: hands out
   none of its jobs; producers wait for the move to end) and raise the epoch;
2. wait until every live worker has acknowledged that epoch (partitions.py): from
   then on none starts a new delivery of the queue. A worker that does not ack
   within `ack_timeout_s` is named; the command then refuses and rolls back
   (nothing was moved), or with `proceed_unacked` goes on and reports it;
3. wait out the producers' re-check interval, so none still places jobs by the
   old count without having seen the mark;
4. wait until no delivery of the queue may be running (no entry pending and idle
   for less than the visibility timeout), else give up: nothing moved is rolled
   back to `old`; a move already half-done is left marked, to be finished by
   running the same command again;
5. move, partition by partition (repartition_entries.py): ready, delayed and
   dead-lettered jobs, locks and step records; an entry that turns pending while
   a pass runs is left for its worker and the passes repeat until one moves
   nothing; copy the dedupe records (`done` holds ids, not keys, so every new
   partition gets them all: they expire after `DEDUPE_TTL_S`); fold the counters
   and job-owned data of partitions that disappear into partition 0;
6. record the new count and unpause (unless it was paused before).

Processes still configured with the old count hold the queue and refuse to
enqueue into it until restarted with `PARTITIONS_<P>=<new>`. Every step is
idempotent: a move that died half-way is finished by running the same command again.
"""

from __future__ import annotations

import time
from typing import Any, Final

import anyio
import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.ops.repartition_entries import EntryMover, target_of
from tgworkers.engine.partitions import RECHECK_S, PartitionRecords, moving
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.keys import ENGINE_KEY_NAMES, GROUP, HEARTBEAT_S, PartitionKeys
from tgworkers.engine.wire.scripts import Scripts
from tgworkers.errors import InputError, OperationError

MAX_PARTITIONS: Final = 1024
MAX_PASSES: Final = 20
LIVE_WINDOW_MS: Final = int(3 * HEARTBEAT_S * 1000)
"""A worker whose heartbeat is older than this is dead and owes no ack (Worker.is_alive)."""


class RepartitionResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`repartition --json`: what moved (zero everywhere when the count was already N)."""

    queue: str
    old: int
    new: int
    moved: dict[str, int]
    passes: int
    paused: bool = False
    """The queue is left paused: it was paused before, or a move that died was finished."""
    acked: int = 0
    """Live workers that acknowledged the pause before anything moved."""
    unacked: list[str] = msgspec.field(default_factory=list)
    """Live workers that did not (only with `proceed_unacked`; otherwise the command refuses)."""
    malformed: int = 0
    """Entries that are not jobs, carried as they are (the worker dead-letters them)."""
    waited_ms: int = 0
    """How long deliveries that may still have been running were waited out."""


class Repartitioner:
    """Moves one queue's state from its recorded partition count to a new one."""

    def __init__(self, redis: Redis, registry: Registry, settings: EngineSettings) -> None:
        self.redis: Any = redis  # bytes replies (RESP2); redis-py's stubs type them as str too
        self.registry = registry
        self.settings = settings
        self.layout = Layout(settings)
        self.records = PartitionRecords(redis, self.layout)
        self.control = Control(redis, registry, self.layout)
        self.entries = EntryMover(redis, Scripts(redis), settings.visibility_timeout_ms)
        self.moved = self.entries.moved
        self.waited_ms = 0
        self.new = 0
        self.was_paused = self.resuming = False

    def _pk(self, proc: Processor, index: int) -> PartitionKeys:
        s = self.settings
        return PartitionKeys(s.queue_prefix, proc.queue, index, s.dlq_suffix)

    async def run(
        self,
        queue: str,
        new: int,
        *,
        timeout_s: float = 60.0,
        ack_timeout_s: float = 10.0,
        proceed_unacked: bool = False,
    ) -> RepartitionResult:
        proc = self.registry.queue(queue)
        if not 1 <= new <= MAX_PARTITIONS:
            raise InputError(f"N: expected a partition count from 1 to {MAX_PARTITIONS}, got {new}")
        record = (await self.records.records()).get(queue, str(self.layout.partition_count(proc)))
        old, resuming = self._plan(queue, record, new)
        self.new = new
        if old == new:
            return RepartitionResult(queue=queue, old=old, new=new, moved={}, passes=0)
        was_paused = resuming or queue in await self.control.paused_queues()
        self.was_paused, self.resuming = was_paused, resuming
        await self.control.set_paused(queue, paused=True)
        await self.redis.hset(self.records.key, queue, f"{old}>{new}")
        epoch = int(await self.redis.incr(self.layout.globals.partitions_epoch))
        marked = time.monotonic()
        acked, unacked = await self._await_acks(epoch, ack_timeout_s)
        if unacked and not proceed_unacked:
            await self._give_up(proc, old)
            raise OperationError(
                f"queue {queue}: workers {', '.join(unacked)} did not acknowledge the pause "
                f"within {ack_timeout_s:g}s; " + _nothing_or_rerun(resuming, queue, new)
                + "; pass a longer --ack-timeout, or --proceed-unacked to move anyway"
            )  # fmt: skip
        if not resuming:  # producers re-read the record within RECHECK_S
            await anyio.sleep(max(0.0, marked + RECHECK_S + 0.5 - time.monotonic()))
        passes = await self._move(proc, old, new, timeout_s)
        await self.redis.hset(self.records.key, queue, new)
        if not was_paused:
            await self.control.set_paused(queue, paused=False)
        return RepartitionResult(
            queue=queue, old=old, new=new, moved=dict(self.moved), passes=passes,
            paused=was_paused, acked=acked, unacked=unacked,
            malformed=len(self.entries.bad), waited_ms=self.waited_ms,
        )  # fmt: skip

    def _plan(self, queue: str, record: str, new: int) -> tuple[int, bool]:
        """(old count, resuming a move that died) from the record."""
        if (move := moving(record)) is None:
            return int(record), False
        if move[1] != new:
            raise OperationError(
                f"queue {queue} is being repartitioned from {move[0]} to {move[1]}; "
                f"finish that first: tgworkers repartition {queue} {move[1]}"
            )
        return move[0], True

    async def _await_acks(self, epoch: int, timeout_s: float) -> tuple[int, list[str]]:
        """(live workers that acked `epoch`, those that did not by the deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            now_ms = int(time.time() * 1000)
            live = {
                name.decode()
                for name in await self.redis.zrangebyscore(
                    self.layout.globals.workers, now_ms - LIVE_WINDOW_MS, "+inf"
                )
            }
            acks = await self.redis.hgetall(self.layout.globals.partitions_acks)
            seen = {k.decode(): int(v) for k, v in acks.items()}
            missing = sorted(c for c in live if seen.get(c, -1) < epoch)
            if not missing or time.monotonic() > deadline:
                await self._prune_acks(seen)
                return len(live) - len(missing), missing
            await anyio.sleep(0.05)

    async def _prune_acks(self, seen: dict[str, int]) -> None:
        """Drop the acks of consumers the registry no longer knows (it keeps an hour)."""
        known = {n.decode() for n in await self.redis.zrange(self.layout.globals.workers, 0, -1)}
        if gone := [c for c in seen if c not in known]:
            await self.redis.hdel(self.layout.globals.partitions_acks, *gone)

    async def _give_up(self, proc: Processor, old: int) -> None:
        """Nothing moved: restore the record and the pause flag. Half-moved: leave the mark."""
        if self.resuming or self.moved.total():
            return
        await self.redis.hset(self.records.key, proc.queue, old)
        if not self.was_paused:
            await self.control.set_paused(proc.queue, paused=False)

    async def _wait_idle(self, proc: Processor, old: int, deadline: float) -> None:
        """Until no delivery of the queue may be running (see `_in_flight`)."""
        started = time.monotonic()
        while (busy := await self._in_flight(proc, old)) > 0:
            if time.monotonic() > deadline:
                await self._give_up(proc, old)
                half = self.resuming or self.moved.total()
                raise OperationError(
                    f"queue {proc.queue}: {busy} jobs still in flight; "
                    + _nothing_or_rerun(bool(half), proc.queue, self.new)
                    + "; retry later or pass a longer --timeout"
                )
            await anyio.sleep(0.1)
        self.waited_ms += int((time.monotonic() - started) * 1000)

    async def _in_flight(self, proc: Processor, old: int) -> int:
        """Deliveries that may be running: entries pending and idle for less than VT.

        A running job's lease is renewed well within the timeout; an entry idle
        longer is held by no live run (a dead worker's, or a read whose reply was
        lost) and is moved with the deliveries it spent.
        """
        vt = self.settings.visibility_timeout_ms
        total = 0
        for p in range(old):
            held = await self.entries.pending(self._pk(proc, p))
            total += sum(1 for h in held.values() if h.idle_ms < vt)
        return total

    async def _move(self, proc: Processor, old: int, new: int, timeout_s: float) -> int:
        for t in range(old, new):  # new partitions get their group before any entry
            try:
                await self.redis.xgroup_create(
                    self._pk(proc, t).ready, GROUP, id="0", mkstream=True
                )
            except rex.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        deadline = time.monotonic() + timeout_s
        passes = 0
        while passes < MAX_PASSES:
            await self._wait_idle(proc, old, deadline)
            passes += 1
            before, self.entries.skipped = self.moved.total(), 0
            for p in range(old):
                await self._move_partition(proc, p, new)
            if self.moved.total() == before and not self.entries.skipped:
                break
        for p in range(old):
            await self._fold(proc, p, new)
        return passes

    async def _move_partition(self, proc: Processor, p: int, new: int) -> None:
        src = self._pk(proc, p)
        target = target_of(src, new, lambda t: self._pk(proc, t))
        await self.entries.move_ready(src, target)
        await self.entries.move_delayed(src, target)
        await self.entries.move_dead(src, target)
        await self.entries.move_locks(src, target)

    async def _fold(self, proc: Processor, p: int, new: int) -> None:
        """Copy dedupe records everywhere; fold a disappearing partition into partition 0."""
        src = self._pk(proc, p)
        done: list[tuple[bytes, float]] = await self.redis.zrange(src.done, 0, -1, withscores=True)
        for start in range(0, len(done), 1000):
            chunk: dict[Any, float] = dict(done[start : start + 1000])
            for t in range(new):
                if t != p:
                    await self.redis.zadd(self._pk(proc, t).done, chunk, gt=True)
        self.moved["doneCopied"] += len(done)
        if p < new:
            return
        first = self._pk(proc, 0)
        for field, value in (await self.redis.hgetall(src.stats)).items():
            await self.redis.hincrby(first.stats, field, int(value))
        await self._fold_job_keys(src, first)
        for key in (src.ready, src.delayed, src.delayed_jobs, src.jobs, src.done, src.dlq,
                    src.stats, src.steps,  # finish records are dropped, not moved (finished.py)
                    src.finished, src.finished_at, src.finished_ids):  # fmt: skip
            await self.redis.delete(key)

    async def _fold_job_keys(self, src: PartitionKeys, dst: PartitionKeys) -> None:
        """Move job-owned keys (`ctx.key(name)`) of a disappearing partition to `dst`.

        Copied with DUMP/RESTORE (the two tags are in different slots); a name that
        already exists in `dst` is kept there and the old copy dropped.
        """
        head = src.tag + ":"
        async for raw in self.redis.scan_iter(match=head.replace("[", "\\[") + "*", count=500):
            name = raw.decode()[len(head) :]
            if name.split(":", 1)[0] in ENGINE_KEY_NAMES:
                continue
            dumped = await self.redis.dump(raw)
            if dumped is not None and not await self.redis.exists(dst.job_key(name)):
                await self.redis.restore(dst.job_key(name), 0, dumped)
                self.moved["jobKeys"] += 1
            await self.redis.delete(raw)


def _nothing_or_rerun(half: bool, queue: str, new: int) -> str:  # noqa: FBT001
    if half:
        return (
            "the move is half-done and the queue stays held: "
            f"run `tgworkers repartition {queue} {new}` again"
        )
    return "nothing was moved"
