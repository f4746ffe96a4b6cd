"""`repartition QUEUE N`: change a queue's partition count without breaking its promises.

A job's partition is `partition_of(key, count)`, so a new count moves job ids and
exclusive keys to other partitions; dedupe (promise 5) and per-key exclusivity
(promise 6) hold only if each job's state moves with it. Steps:

1. pause the queue and mark its record `<old>><new>`: every worker holds it (hands
   out none of its jobs), producers wait for the move to end;
2. wait until no job of the queue is in flight (the PELs of its partitions are
   empty), else give up, restore the record and unpause: nothing was moved;
3. wait out the producers' re-check interval, so none still places jobs by the old
   count without having seen the mark;
4. move, partition by partition, each job whose partition changes: ready and
   delayed jobs (through the enqueue script, so the target refuses an id it already
   holds: a rerun after a crash moves nothing twice), dead letters, locks and step
   records; copy the dedupe records (`done` holds ids, not keys, so every new
   partition gets them all: they expire after `DEDUPE_TTL_S`); fold the counters
   and job-owned data of partitions that disappear into partition 0; repeat until
   a pass moves nothing (a delayed job promoted meanwhile is caught by the next);
5. record the new count and unpause (unless it was paused before).

Processes still configured with the old count hold the queue and refuse to
enqueue into it until restarted with `PARTITIONS_<P>=<new>`. A move that died
half-way is finished by running the same command again.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Final

import anyio
import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.control import Control
from tgworkers.engine.envelope import fields_json
from tgworkers.engine.keys import ENGINE_KEY_NAMES, GROUP, Field, PartitionKeys, partition_of
from tgworkers.engine.layout import Layout
from tgworkers.engine.partitions import RECHECK_S, PartitionRecords, moving
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.scripts import NewJob, Scripts
from tgworkers.engine.settings import EngineSettings
from tgworkers.errors import InputError, OperationError

CHUNK: Final = 200
MAX_PARTITIONS: Final = 1024
MAX_PASSES: Final = 5


class RepartitionResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """`repartition --json`: what moved (zero everywhere when the count was already N)."""

    queue: str
    old: int
    new: int
    moved: dict[str, int]
    passes: int
    paused: bool = False
    """The queue is left paused: it was paused before, or a move that died was finished."""


def _flat(fields: dict[bytes, bytes]) -> list[str | bytes]:
    return [x for kv in fields.items() for x in kv]


def _route_key(fields: dict[bytes, bytes]) -> str:
    """What `Client.prepare` partitioned a job by: its key if it has one (even ""), else its id."""
    key = fields.get(Field.KEY.encode())
    return (key if key is not None else fields.get(Field.ID.encode(), b"")).decode()


class Repartitioner:
    """Moves one queue's state from its recorded partition count to a new one."""

    def __init__(self, redis: Redis, registry: Registry, settings: EngineSettings) -> None:
        self.redis: Any = redis  # bytes replies (RESP2); redis-py's stubs type them as str too
        self.registry = registry
        self.settings = settings
        self.layout = Layout(settings)
        self.records = PartitionRecords(redis, self.layout)
        self.control = Control(redis, registry, self.layout)
        self.scripts = Scripts(redis)
        self.moved: Counter[str] = Counter()

    def _pk(self, proc: Processor, index: int) -> PartitionKeys:
        s = self.settings
        return PartitionKeys(s.queue_prefix, proc.queue, index, s.dlq_suffix)

    async def run(self, queue: str, new: int, *, timeout_s: float = 60.0) -> RepartitionResult:
        proc = self.registry.queue(queue)
        if not 1 <= new <= MAX_PARTITIONS:
            raise InputError(f"N: expected a partition count from 1 to {MAX_PARTITIONS}, got {new}")
        record = (await self.records.records()).get(queue, str(self.layout.partition_count(proc)))
        old, resuming = self._plan(queue, record, new)
        if old == new:
            return RepartitionResult(queue=queue, old=old, new=new, moved={}, passes=0)
        was_paused = resuming or queue in await self.control.paused_queues()
        await self.control.set_paused(queue, paused=True)
        await self.redis.hset(self.records.key, queue, f"{old}>{new}")
        if not resuming:
            await self._wait_idle(proc, old, timeout_s, was_paused=was_paused)
            await anyio.sleep(RECHECK_S + 0.5)  # producers re-read the record within RECHECK_S
        passes = await self._move(proc, old, new)
        await self.redis.hset(self.records.key, queue, new)
        if not was_paused:
            await self.control.set_paused(queue, paused=False)
        return RepartitionResult(
            queue=queue, old=old, new=new, moved=dict(self.moved), passes=passes, paused=was_paused
        )

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

    async def _wait_idle(
        self, proc: Processor, old: int, timeout_s: float, *, was_paused: bool
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while (busy := await self._in_flight(proc, old)) > 0:
            if time.monotonic() > deadline:
                await self.redis.hset(self.records.key, proc.queue, old)
                if not was_paused:
                    await self.control.set_paused(proc.queue, paused=False)
                raise OperationError(
                    f"queue {proc.queue}: {busy} jobs still in flight after {timeout_s:g}s; "
                    "nothing was moved; retry later or pass a longer --timeout"
                )
            await anyio.sleep(0.1)

    async def _in_flight(self, proc: Processor, old: int) -> int:
        """Jobs running now: pending entries idle for less than the visibility timeout.

        A running job's lease is renewed well within the timeout; an entry idle
        longer is held by no live run (a dead worker's, or a read whose reply was
        lost) and is moved like a ready one: its old PEL record then points at a
        deleted entry, which the reclaim sweep drops.
        """
        vt = self.settings.visibility_timeout_ms
        total = 0
        for p in range(old):
            stream = self._pk(proc, p).ready
            try:
                pending = int((await self.redis.xpending(stream, GROUP))["pending"])
            except rex.ResponseError:  # no stream or group yet: nothing in flight
                continue
            if pending:
                stale = await self.redis.xpending_range(stream, GROUP, "-", "+", pending, idle=vt)
                total += pending - len(stale)
        return total

    async def _move(self, proc: Processor, old: int, new: int) -> int:
        for t in range(old, new):  # new partitions get their group before any entry
            try:
                await self.redis.xgroup_create(
                    self._pk(proc, t).ready, GROUP, id="0", mkstream=True
                )
            except rex.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        passes = 0
        while passes < MAX_PASSES:
            passes += 1
            before = sum(self.moved.values())
            for p in range(old):
                await self._move_partition(proc, p, new)
            if sum(self.moved.values()) == before:
                break
        for p in range(old):
            await self._fold(proc, p, new)
        return passes

    async def _move_partition(self, proc: Processor, p: int, new: int) -> None:
        src = self._pk(proc, p)
        await self._move_ready(proc, src, new)
        await self._move_delayed(proc, src, new)
        await self._move_dead(proc, src, new)
        await self._move_locks(proc, src, new)

    def _target(
        self, proc: Processor, src: PartitionKeys, key: str, new: int
    ) -> PartitionKeys | None:
        t = partition_of(key, new)
        return None if t == src.partition and src.partition < new else self._pk(proc, t)

    async def _move_ready(self, proc: Processor, src: PartitionKeys, new: int) -> None:
        start = "-"
        while entries := await self.redis.xrange(src.ready, min=start, count=CHUNK):
            start = "(" + entries[-1][0].decode()
            for entry, fields in entries:
                dst = self._target(proc, src, _route_key(fields), new)
                if dst is None:
                    continue
                job_id = fields[Field.ID.encode()].decode()
                job = NewJob(id=job_id, due_ms=0, fields_json=fields_json(_flat(fields)))
                await self.scripts.enqueue(dst, [job], dedupe_ttl_ms=0)
                await self._forget(src, job_id, entry=entry)
                await self._move_steps(src, dst, job_id)
                self.moved["ready"] += 1

    async def _move_delayed(self, proc: Processor, src: PartitionKeys, new: int) -> None:
        for job_id, due in await self.redis.zrange(src.delayed, 0, -1, withscores=True):
            raw = await self.redis.hget(src.delayed_jobs, job_id)
            if raw is None:
                continue  # a lost record: the promoter counts and drops it
            flat = msgspec.json.decode(raw, type=list[str])
            fields = {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat) - 1, 2)}
            dst = self._target(proc, src, _route_key(fields), new)
            if dst is None:
                continue
            job = NewJob(id=job_id.decode(), due_ms=int(due), fields_json=raw)
            await self.scripts.enqueue(dst, [job], dedupe_ttl_ms=0)
            await self.redis.zrem(src.delayed, job_id)
            await self.redis.hdel(src.delayed_jobs, job_id)
            await self._forget(src, job_id.decode(), entry=None)
            await self._move_steps(src, dst, job_id.decode())
            self.moved["delayed"] += 1

    async def _move_dead(self, proc: Processor, src: PartitionKeys, new: int) -> None:
        for entry, fields in await self.redis.xrange(src.dlq):
            dst = self._target(proc, src, _route_key(fields), new)
            if dst is None:
                continue
            job_id = fields[Field.ID.encode()].decode()
            dead = await self.redis.xadd(dst.dlq, fields)
            await self.redis.hset(dst.jobs, job_id, b"x:" + dead)
            await self.redis.xdel(src.dlq, entry)
            if await self.redis.hget(src.jobs, job_id) == b"x:" + entry:
                await self.redis.hdel(src.jobs, job_id)
            self.moved["dead"] += 1

    async def _move_locks(self, proc: Processor, src: PartitionKeys, new: int) -> None:
        prefix = src.lock("")
        async for name in self.redis.scan_iter(match=prefix.replace("[", "\\[") + "*", count=500):
            key = name.decode()[len(prefix) :]
            dst = self._target(proc, src, key, new)
            if dst is None:
                continue
            holder, ttl = await self.redis.get(name), await self.redis.pttl(name)
            if holder is not None:
                await self.redis.set(dst.lock(key), holder, px=ttl if ttl > 0 else None, nx=True)
            await self.redis.delete(name)
            self.moved["locks"] += 1

    async def _forget(self, src: PartitionKeys, job_id: str, *, entry: bytes | None) -> None:
        if entry is not None:
            await self.redis.xdel(src.ready, entry)
        state = await self.redis.hget(src.jobs, job_id)
        if state is not None and state in ((b"r:" + entry) if entry else b"d", b"d"):
            await self.redis.hdel(src.jobs, job_id)

    async def _move_steps(self, src: PartitionKeys, dst: PartitionKeys, job_id: str) -> None:
        steps = await self.redis.hget(src.steps, job_id)
        if steps is not None:
            await self.redis.hset(dst.steps, job_id, steps)
            await self.redis.hdel(src.steps, job_id)

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
