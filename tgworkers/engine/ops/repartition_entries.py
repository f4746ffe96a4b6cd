"""Moving one partition's entries during `repartition`: jobs, bad entries, locks.

Every step is idempotent, so a move that died is finished by running it again:
a job is re-added through the enqueue script (which refuses an id the target
already holds) before its source entry is removed. Three rules of the protocol
(repartition.py) live here:

- an entry still pending and idle for less than the visibility timeout may be
  running: it is never moved (`skipped`; the caller waits it out and passes again);
- a stale pending entry (its worker died) moves with the deliveries it spent, in
  `moved_deliveries`, so MAX_DELIVERIES counts across the move; its source is
  acknowledged before it is deleted, so no sweep reports it as lost;
- an entry that is not a job (no `id`, `name` or `payload`, bytes that are not
  UTF-8, a delayed record that is not a JSON array of strings) is carried as it is,
  bytes unchanged, to the partition its key, id or entry id gives it, where the
  worker dead-letters it as it would have in place; it is counted, never fatal.
  (A crash between carrying one and deleting its source may carry it twice: it is
  dead-lettered twice; it is not a job.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.wire.envelope import fields_json
from tgworkers.engine.wire.keys import GROUP, Field, PartitionKeys, partition_of_bytes
from tgworkers.engine.wire.script_items import NewJob
from tgworkers.engine.wire.scripts import Scripts

CHUNK: Final = 200
_REQUIRED: Final = (b"id", b"name", b"payload")
_MOVED: Final = Field.MOVED_DELIVERIES.encode()
_delayed = msgspec.json.Decoder(list[str])

Target = Callable[[bytes], PartitionKeys | None]
"""Where an entry keyed by these bytes goes; None when it stays where it is."""


class Pending(NamedTuple):
    """An entry's pending record: how often it was delivered, how long ago it was touched."""

    deliveries: int
    idle_ms: int


def _flat(fields: dict[bytes, bytes]) -> list[str | bytes]:
    return [x for kv in fields.items() for x in kv]


def is_job(fields: dict[bytes, bytes]) -> bool:
    """True when the entry has the required fields and every name and value is UTF-8."""
    if not all(fields.get(f) for f in _REQUIRED):
        return False
    try:
        for name, value in fields.items():
            name.decode()
            value.decode()
    except UnicodeDecodeError:
        return False
    return True


def route_key(fields: dict[bytes, bytes], fallback: bytes) -> bytes:
    """What `Client.prepare` partitioned a job by: its key if it has one (even ""), else its id."""
    key = fields.get(Field.KEY.encode())
    if key is not None:
        return key
    return fields.get(Field.ID.encode()) or fallback


def delayed_fields(raw: bytes) -> dict[bytes, bytes] | None:
    """A delayed record's fields, or None when it is not a JSON array of names and values."""
    try:
        flat = _delayed.decode(raw)
    except msgspec.DecodeError:
        return None
    if not flat or len(flat) % 2:
        return None
    return {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat), 2)}


def with_spent(fields: dict[bytes, bytes], spent: int) -> dict[bytes, bytes]:
    """The fields with `moved_deliveries` raised by `spent` deliveries of the old entry."""
    if not spent:
        return fields
    before = fields.get(_MOVED, b"0")
    total = (int(before) if before.isdigit() else 0) + spent
    return {**fields, _MOVED: str(total).encode()}


class EntryMover:
    """Moves the entries of source partitions to the partitions of the new count."""

    def __init__(self, redis: Redis, scripts: Scripts, visibility_timeout_ms: int) -> None:
        self.redis: Any = redis  # bytes replies (RESP2)
        self.scripts = scripts
        self.vt_ms = visibility_timeout_ms
        self.moved: Counter[str] = Counter()
        self.skipped = 0
        """Entries left in place this pass because their delivery may be running."""
        self.bad: set[tuple[str, bytes]] = set()
        """Entries that are not jobs, seen so far: (where, entry or job id)."""

    async def pending(self, src: PartitionKeys) -> dict[bytes, Pending]:
        """The partition's pending entries (bounded by what workers hold)."""
        try:
            total = int((await self.redis.xpending(src.ready, GROUP))["pending"])
        except rex.ResponseError:  # no stream or group yet
            return {}
        if not total:
            return {}
        rows = await self.redis.xpending_range(src.ready, GROUP, "-", "+", total)
        return {
            r["message_id"]: Pending(int(r["times_delivered"]), int(r["time_since_delivered"]))
            for r in rows
        }

    async def move_ready(self, src: PartitionKeys, target: Target) -> None:
        pending = await self.pending(src)
        start = "-"
        while entries := await self.redis.xrange(src.ready, min=start, count=CHUNK):
            start = "(" + entries[-1][0].decode()
            for entry, fields in entries:
                good = is_job(fields)
                if not good:
                    self.bad.add((src.ready, entry))
                dst = target(route_key(fields, entry))
                if dst is None:
                    continue
                held = pending.get(entry)
                if held is not None and held.idle_ms < self.vt_ms:
                    self.skipped += 1  # may be running: its worker settles it, or it goes stale
                    continue
                spent = held.deliveries if held is not None else 0
                if good:
                    await self._move_job(src, dst, entry, with_spent(fields, spent))
                else:
                    await self._carry(src, dst, entry, fields)
                await self._drop_entry(src, entry, fields.get(b"id"), acked=held is not None)

    async def _move_job(
        self, src: PartitionKeys, dst: PartitionKeys, entry: bytes, fields: dict[bytes, bytes]
    ) -> None:
        job_id = fields[b"id"].decode()
        job = NewJob(id=job_id, due_ms=0, fields_json=fields_json(_flat(fields)))
        await self.scripts.enqueue(dst, [job], dedupe_ttl_ms=0)
        await self._move_steps(src, dst, fields[b"id"])
        self.moved["ready"] += 1

    async def _carry(
        self, src: PartitionKeys, dst: PartitionKeys, entry: bytes, fields: dict[bytes, bytes]
    ) -> None:
        """A ready entry that is not a job, bytes unchanged."""
        added = await self.redis.xadd(dst.ready, fields)
        if job_id := fields.get(b"id"):
            await self.redis.hset(dst.jobs, job_id, b"r:" + added)
        self.moved["malformed"] += 1

    async def _drop_entry(
        self, src: PartitionKeys, entry: bytes, job_id: bytes | None, *, acked: bool
    ) -> None:
        if acked:  # a stale delivery: out of the PEL, so no sweep counts it as lost
            await self.redis.xack(src.ready, GROUP, entry)
        await self.redis.xdel(src.ready, entry)
        if job_id and await self.redis.hget(src.jobs, job_id) == b"r:" + entry:
            await self.redis.hdel(src.jobs, job_id)

    async def move_delayed(self, src: PartitionKeys, target: Target) -> None:
        for job_id, due in await self.redis.zrange(src.delayed, 0, -1, withscores=True):
            raw = await self.redis.hget(src.delayed_jobs, job_id)
            if raw is None:
                continue  # a lost record: the promoter counts and drops it
            fields = delayed_fields(raw)
            good = fields is not None and is_job({**fields, b"id": job_id})
            if not good:
                self.bad.add((src.delayed, job_id))
            dst = target(route_key(fields or {}, job_id))
            if dst is None:
                continue
            if good:
                job = NewJob(id=job_id.decode(), due_ms=int(due), fields_json=raw)
                await self.scripts.enqueue(dst, [job], dedupe_ttl_ms=0)
                self.moved["delayed"] += 1
            else:  # carried as it is: the promoter dead-letters it with its bytes
                await self.redis.zadd(dst.delayed, {job_id: due})
                await self.redis.hset(dst.delayed_jobs, job_id, raw)
                await self.redis.hset(dst.jobs, job_id, b"d")
                self.moved["malformed"] += 1
            await self.redis.zrem(src.delayed, job_id)
            await self.redis.hdel(src.delayed_jobs, job_id)
            if await self.redis.hget(src.jobs, job_id) == b"d":
                await self.redis.hdel(src.jobs, job_id)
            await self._move_steps(src, dst, job_id)

    async def move_dead(self, src: PartitionKeys, target: Target) -> None:
        for entry, fields in await self.redis.xrange(src.dlq):
            dst = target(route_key(fields, entry))
            if dst is None:
                continue
            dead = await self.redis.xadd(dst.dlq, fields)
            job_id = fields.get(b"id")
            if job_id:
                await self.redis.hset(dst.jobs, job_id, b"x:" + dead)
            await self.redis.xdel(src.dlq, entry)
            if job_id and await self.redis.hget(src.jobs, job_id) == b"x:" + entry:
                await self.redis.hdel(src.jobs, job_id)
            self.moved["dead"] += 1

    async def move_locks(self, src: PartitionKeys, target: Target) -> None:
        """Copy each lock whose key moves, its value as it is (never parsed), then drop it."""
        prefix = src.lock("").encode()
        pattern = prefix.replace(b"[", b"\\[") + b"*"
        async for name in self.redis.scan_iter(match=pattern, count=500):
            key = name[len(prefix) :]
            dst = target(key)
            if dst is None:
                continue
            holder, ttl = await self.redis.get(name), await self.redis.pttl(name)
            if holder is not None:
                await self.redis.set(
                    dst.lock("").encode() + key, holder, px=ttl if ttl > 0 else None, nx=True
                )
            await self.redis.delete(name)
            self.moved["locks"] += 1

    async def _move_steps(self, src: PartitionKeys, dst: PartitionKeys, job_id: bytes) -> None:
        steps = await self.redis.hget(src.steps, job_id)
        if steps is not None:
            await self.redis.hset(dst.steps, job_id, steps)
            await self.redis.hdel(src.steps, job_id)


def target_of(src: PartitionKeys, new: int, make: Callable[[int], PartitionKeys]) -> Target:
    """Where an entry of `src` keyed by `key` goes under `new` partitions (None: it stays)."""

    def target(key: bytes) -> PartitionKeys | None:
        t = partition_of_bytes(key, new)
        return None if t == src.partition and src.partition < new else make(t)

    return target
