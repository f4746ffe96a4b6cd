"""Typed wrappers over the Lua scripts in `lua/`: the only code that runs EVALSHA.

What each script takes and answers is typed in `script_items.py`; this module loads
the scripts and converts between those values and the scripts' KEYS, ARGV and replies.

Each script is loaded from the package with `importlib.resources` and registered
with redis-py's `register_script`, which runs EVALSHA and reloads the script
transparently on NOSCRIPT (after a Redis restart, failover or SCRIPT FLUSH).
Every key a script touches is passed in KEYS, built by `keys.py`.

Fencing token: every script that changes a delivered entry (settle, lease, lock,
step record) takes the delivery's token (`Delivery.token`, its delivery count
when claimed) and acts only while XPENDING shows this consumer *and* that count.
An exclusivity lock holds `<entry id>/<token>`, built by the scripts from the
arguments they already get: only the delivery it names extends or releases it.

Scripts that settle, renew or clean up start with `#!lua flags=allow-oom`: at
`maxmemory` (noeviction) they are what frees memory, so Redis must run them; the
rest (enqueue, promote, step records) are refused whole before their first write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Final

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from tgworkers.engine.wire.keys import GROUP, PartitionKeys
from tgworkers.engine.wire.script_items import (
    AcquireItem,
    Claimed,
    DeadItem,
    DoneItem,
    Fields,
    HandBackItem,
    HeldLock,
    LaterItem,
    LeaseItem,
    NewJob,
    Promoted,
    ReclaimPage,
)

SCRIPT_NAMES: Final = (
    "enqueue",
    "promote_due",
    "settle_done",
    "settle_later",
    "dead_letter",
    "reclaim_idle",
    "renew_leases",
    "hand_back",
    "acquire_keys",
    "remove_consumer",
    "drain_ready",
    "dlq_requeue",
    "dlq_drop",
    "forget_stale",
    "record_steps",
    "audit_append",
    "rate_take",
    "finished_record",
    "job_delete",
    "hold_locks",
)

MAX_DUE_MS: Final = 253_402_300_799_999
"""The latest due time `enqueue.lua` accepts (9999-12-31T23:59:59.999Z); the script holds it too."""

SNOOZE_FLOOR_MS: Final = 1_000
"""A snooze due at or before Redis's now waits this long, doubled per past-due snooze..."""
SNOOZE_FLOOR_MAX_MS: Final = 60_000
"""...up to this: a job whose clock disagrees with Redis runs a handful of times, not thousands."""


_json = msgspec.json.Encoder()


def script_text(name: str) -> str:
    """The source of one Lua script shipped with the package."""
    return resources.files("tgworkers.engine.wire.lua").joinpath(f"{name}.lua").read_text()


class _Locks:
    """Collects the lock keys of a batch; `index()` gives the KEYS position (0 = none)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.keys: list[str] = []
        self._pos: dict[str, int] = {}

    def index(self, lock: str | None) -> int:
        if lock is None:
            return 0
        if lock not in self._pos:
            self.keys.append(lock)
            self._pos[lock] = self.base + len(self.keys)
        return self._pos[lock]


def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


class Scripts:
    """One typed async method per script."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._s: dict[str, AsyncScript] = {
            name: redis.register_script(script_text(name)) for name in SCRIPT_NAMES
        }

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA; a script the server lost is loaded again (redis-py), and once more.

        The first EVALSHA goes straight to the client: redis-py's script object copies the
        keys and arguments twice and imports its pipeline classes on every call, which a
        single enqueue paid before its command went out (pickup latency). On NOSCRIPT the
        script object loads it and runs it again; a Redis restarted between those two (a
        restart under load, a failover) loses it again, and that second NOSCRIPT would fail
        the caller's turn for nothing.
        """
        script = self._s[name]
        try:
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except rex.NoScriptError:
            try:
                return await script(keys=list(keys), args=list(args))
            except rex.NoScriptError:
                return await script(keys=list(keys), args=list(args))

    async def enqueue(
        self, pk: PartitionKeys, jobs: Sequence[NewJob], *, dedupe_ttl_ms: int
    ) -> list[bool]:
        args: list[Any] = [dedupe_ttl_ms, pk.wake_channel, len(jobs)]
        for job in jobs:
            args += (job.id, job.due_ms, job.fields_json)
        keys = (pk.ready, pk.delayed, pk.delayed_jobs, pk.jobs, pk.done, pk.dlq)
        return [bool(x) for x in await self._run("enqueue", keys, args)]

    async def promote_due(self, pk: PartitionKeys, *, limit: int) -> Promoted:
        keys = (pk.delayed, pk.delayed_jobs, pk.ready, pk.jobs, pk.stats, pk.dlq)
        moved, lost, nxt, now, dead = await self._run("promote_due", keys, [limit])
        return Promoted(int(moved), int(lost), int(nxt), int(now), int(dead))

    async def settle_done(
        self,
        pk: PartitionKeys,
        consumer: str,
        items: Sequence[DoneItem],
        *,
        dedupe_ttl_ms: int,
        held: int = 0,
    ) -> list[bytes]:
        """Ack and forget finished jobs; `held` bounds this consumer's pending entries."""
        locks = _Locks(5)
        # one JSON argument (packing four per job cost more than the script), by column;
        # the rare values by position only (1-based): the jobs to remember for dedupe, the
        # locks to release and the tokens other than 1 (a first delivery's). A number per
        # job in JSON cost Redis ~0.5k instructions to decode, and the worker a call.
        columns = (
            [it.entry_id.decode() for it in items],
            [it.job_id for it in items],
            [n for n, it in enumerate(items, 1) if it.dedupe],
            [(n, locks.index(it.lock)) for n, it in enumerate(items, 1) if it.lock is not None],
            [(n, it.token) for n, it in enumerate(items, 1) if it.token != 1],
        )
        args = [GROUP, consumer, dedupe_ttl_ms, _json.encode(columns), held + len(items) + 64]
        keys = [pk.ready, pk.jobs, pk.done, pk.stats, pk.steps, *locks.keys]
        return list(await self._run("settle_done", keys, args))

    async def settle_later(
        self, pk: PartitionKeys, consumer: str, items: Sequence[LaterItem]
    ) -> tuple[list[bytes], int]:
        locks = _Locks(5)
        args: list[Any] = [GROUP, consumer, len(items), SNOOZE_FLOOR_MS, SNOOZE_FLOOR_MAX_MS]
        for it in items:
            kind = "retry" if it.retry else "snooze"
            args += (it.entry_id, it.job_id, it.at_ms, it.delay_ms, kind, it.fields_json)
            args += (locks.index(it.lock), it.token, it.snoozes)
        keys = [pk.ready, pk.delayed, pk.delayed_jobs, pk.jobs, pk.stats, *locks.keys]
        refused, earliest = await self._run("settle_later", keys, args)
        return list(refused), int(earliest)

    async def dead_letter(
        self, pk: PartitionKeys, consumer: str, items: Sequence[DeadItem]
    ) -> list[bytes]:
        locks = _Locks(4)
        args: list[Any] = [GROUP, consumer, len(items)]
        for it in items:
            args += (it.entry_id, it.job_id, "1" if it.failed else "0", locks.index(it.lock))
            args += (it.token, len(it.fields), *it.fields)
        keys = [pk.ready, pk.dlq, pk.jobs, pk.stats, *locks.keys]
        return list(await self._run("dead_letter", keys, args))

    async def reclaim_idle(  # noqa: PLR0913 - one script, its arguments by name
        self,
        pk: PartitionKeys,
        consumer: str,
        *,
        min_idle_ms: int,
        cursor: bytes,
        count: int,
        max_deliveries: int,
        suspect_deliveries: int,
        suspect_room: int,
    ) -> ReclaimPage:
        """One XAUTOCLAIM page; at most `suspect_room` repeat suspects are taken (see the Lua)."""
        args = [GROUP, consumer, min_idle_ms, cursor, count]
        args += [max_deliveries, suspect_deliveries, suspect_room]
        nxt, claimed, deleted = await self._run("reclaim_idle", [pk.ready, pk.stats], args)
        return ReclaimPage(
            cursor=nxt,
            claimed=[Claimed(c[0], int(c[1]), _pairs(c[2])) for c in claimed],
            deleted=list(deleted),
        )

    async def renew_leases(
        self, pk: PartitionKeys, consumer: str, items: Sequence[LeaseItem], *, lock_ttl_ms: int
    ) -> tuple[list[bytes], list[bytes]]:
        """Returns (entries lost to another consumer, entries deleted behind our back)."""
        locks = _Locks(4)
        args: list[Any] = [GROUP, consumer, lock_ttl_ms, len(items)]
        for it in items:
            args += (it.entry_id, it.job_id, locks.index(it.lock), it.token)
        keys = [pk.ready, pk.jobs, pk.stats, pk.steps, *locks.keys]
        lost, deleted = await self._run("renew_leases", keys, args)
        return list(lost), list(deleted)

    async def hold_locks(self, held: Sequence[HeldLock], *, ttl_ms: int) -> list[bool]:
        """Extend (`ttl_ms` > 0) or release (0) each lock while it names its delivery.

        The locks of one call must be one partition's (one hash slot on a cluster).
        """
        args: list[Any] = [ttl_ms]
        for h in held:
            args += (h.entry_id, h.token)
        return [bool(x) for x in await self._run("hold_locks", [h.lock for h in held], args)]

    async def record_steps(
        self, pk: PartitionKeys, consumer: str, entry_id: bytes, token: int, job_id: str,
        steps_json: bytes,
    ) -> bool:  # fmt: skip
        """Record a job's finished steps while this delivery holds its entry (fenced)."""
        args = [GROUP, consumer, entry_id, token, job_id, steps_json]
        return bool(await self._run("record_steps", [pk.ready, pk.steps], args))

    async def forget_stale(self, pk: PartitionKeys, *, cursor: int, count: int) -> tuple[int, int]:
        """One HSCAN page of stale job-state records removed: (next cursor, removed)."""
        keys = (pk.ready, pk.jobs, pk.delayed, pk.dlq, pk.steps)
        nxt, removed = await self._run("forget_stale", keys, [cursor, count])
        return int(nxt), int(removed)

    async def hand_back(
        self, pk: PartitionKeys, consumer: str, items: Sequence[HandBackItem]
    ) -> int:
        locks = _Locks(2)
        args: list[Any] = [GROUP, consumer, len(items)]
        for it in items:
            args += (it.entry_id, it.job_id, locks.index(it.lock), it.token)
            args += (len(it.fields), *it.fields)
        return int(await self._run("hand_back", [pk.ready, pk.jobs, *locks.keys], args))

    async def acquire_keys(
        self,
        pk: PartitionKeys,
        consumer: str,
        items: Sequence[AcquireItem],
        *,
        lock_ttl_ms: int,
    ) -> list[int]:
        locks = _Locks(4)
        args: list[Any] = [GROUP, consumer, lock_ttl_ms, len(items)]
        for it in items:
            args += (it.entry_id, it.job_id, locks.index(it.lock), it.fields_json)
            args += (it.token, it.wait_ms)
        keys = [pk.ready, pk.delayed, pk.delayed_jobs, pk.jobs, *locks.keys]
        return [int(x) for x in await self._run("acquire_keys", keys, args)]

    async def remove_consumer(self, pk: PartitionKeys, consumer: str) -> bool:
        return bool(await self._run("remove_consumer", [pk.ready], [GROUP, consumer]))

    async def drain_ready(
        self, pk: PartitionKeys, *, delayed: bool, limit: int
    ) -> tuple[int, int, bool]:
        keys = (pk.ready, pk.jobs, pk.delayed, pk.delayed_jobs, pk.steps)
        ready, later, more = await self._run(
            "drain_ready", keys, [GROUP, "1" if delayed else "0", limit]
        )
        return int(ready), int(later), bool(more)

    async def dlq_requeue(
        self, pk: PartitionKeys, items: Sequence[tuple[bytes, str, Fields]]
    ) -> list[bool]:
        args: list[Any] = [len(items)]
        for dead_id, job_id, fields in items:
            args += (dead_id, job_id, len(fields), *fields)
        keys = (pk.dlq, pk.ready, pk.jobs)
        return [bool(x) for x in await self._run("dlq_requeue", keys, args)]

    async def audit_append(
        self, key: str, fields: Mapping[str, str | bytes], *, maxlen: int
    ) -> str:
        args: list[Any] = [maxlen]
        for name, value in fields.items():
            args += (name, value)
        entry = await self._run("audit_append", (key,), args)
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def rate_take(
        self, key: str, per_s: float, burst: int, max_wait_ms: int
    ) -> tuple[int, bool]:
        """A permit of one shared limit (GCRA on Redis's clock): (wait ms, booked)."""
        wait_ms, booked = await self._run("rate_take", (key,), [repr(per_s), burst, max_wait_ms])
        return int(wait_ms), bool(booked)

    async def finished_record(
        self, pk: PartitionKeys, rows: Sequence[tuple[str, int, bytes]], *, keep_ms: int,
        forget_per_call: int,
    ) -> None:  # fmt: skip
        """Finish records of one partition, written and aged out in one call."""
        args: list[Any] = [keep_ms, forget_per_call]
        for job_id, at, blob in rows:
            args += [job_id, at, blob]
        await self._run("finished_record", (pk.finished, pk.finished_at, pk.finished_ids), args)

    async def job_delete(self, pk: PartitionKeys, job_id: str) -> str:
        """Delete a ready (untaken) or delayed job: where it was, or why it was not."""
        keys = (pk.ready, pk.delayed, pk.delayed_jobs, pk.jobs)
        where = await self._run("job_delete", keys, [GROUP, job_id])
        return where.decode() if isinstance(where, bytes) else str(where)

    async def dlq_drop(self, pk: PartitionKeys, items: Sequence[tuple[bytes, str]]) -> int:
        args: list[Any] = [len(items)]
        for dead_id, job_id in items:
            args += (dead_id, job_id)
        return int(await self._run("dlq_drop", (pk.dlq, pk.jobs, pk.steps), args))
