"""The Streams surface of the engine: every non-script stream command lives here.

Reads return `Delivery` values; group creation, consumer listing and the
NOGROUP recovery are here too, so no other module issues a stream command.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.wire.envelope import Envelope, MalformedEntryError, from_fields
from tgworkers.engine.wire.keys import GROUP, PartitionKeys

if TYPE_CHECKING:
    from tgworkers.engine.registry import JobType


@dataclass(slots=True, eq=False)
class Delivery:
    """One stream entry handed to this worker, and what became of it here."""

    pk: PartitionKeys
    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int = 1
    envelope: Envelope | None = None
    problem: str | None = None
    job_type: JobType[Any] | None = None
    lock: str | None = None
    timeout: asyncio.Timeout | None = None
    lost: bool = False
    handback: bool = False
    settling: bool = False
    leased_at: float = 0.0
    """Monotonic time just before the call that last claimed or renewed this entry (or,
    once lost, extended its key lock): Redis may hand it to another worker VT after
    that, so the run stops before then."""
    cancelled_at: float = 0.0
    """Monotonic time its running handler was first cancelled (0: never): how long its
    clean-up took is measured from here (`job.cleanup_overran`)."""
    payload: Any = None
    """The payload decoded and validated by the executor's check, for the handler."""
    error_type: str | None = None
    """Class name of what the handler raised, when it failed (telemetry's error.type)."""
    held_as: tuple[int, bytes] = field(init=False)
    """Its key in a runtime's tables (held entries, unfinished runs): not the entry id
    alone, which repeats across the partitions' streams (two of them can each add
    `1796611357578-0` in the same millisecond). Built once: looked up several times a job."""

    def __post_init__(self) -> None:
        self.held_as = (self.pk.partition, self.entry_id)

    def decode(self) -> None:
        """Fill `envelope`, or `problem` naming why the entry is not a job."""
        if not self.fields:
            self.problem = "entry has no fields (deleted while pending)"
            return
        try:
            self.envelope = from_fields(self.fields, entry_id=self.entry_id)
        except MalformedEntryError as exc:
            self.problem = f"malformed entry: {exc}"

    def cancel(self) -> None:
        """Interrupt the running handler now (its lease was lost, or shutdown)."""
        if self.timeout is not None:
            now = asyncio.get_running_loop().time()
            self.cancelled_at = self.cancelled_at or time.monotonic()
            self.timeout.reschedule(now)

    @property
    def cleanup_s(self) -> float:
        """Its job type's clean-up budget (0 for an entry that is not a known job)."""
        return self.job_type.cleanup_s if self.job_type is not None else 0.0

    @property
    def running(self) -> bool:
        return self.timeout is not None

    def interrupted(self) -> bool:
        """True when the run must not be settled normally (lease lost, shutdown)."""
        return self.lost or self.handback

    @property
    def job_id(self) -> str:
        return self.envelope.id if self.envelope else ""

    @property
    def spent(self) -> int:
        """Deliveries of this job, counting those before a `repartition` moved it.

        A move re-adds the job as a new entry (delivery count 1); the mover writes
        what the old entry had spent in `moved_deliveries`, so MAX_DELIVERIES
        counts across the move. Not the fencing token: that stays `deliveries`.
        """
        raw = self.fields.get(b"moved_deliveries")
        return self.deliveries + (int(raw) if raw and raw.isdigit() else 0)

    @property
    def token(self) -> int:
        """The fencing token: the entry's delivery count when this delivery claimed it.

        XREADGROUP delivers a new entry with count 1 and every XAUTOCLAIM raises it,
        so the scripts accept a settle, lease renewal, lock or step record only while
        XPENDING still shows this consumer *and* this count (promise 3).
        """
        return self.deliveries


def is_nogroup(exc: BaseException) -> bool:
    """The group (or its stream) is gone: deleted, or a FLUSH / failover lost it.

    `UNBLOCKED` is what a blocked XREADGROUP gets when its stream is deleted under it.
    """
    if not isinstance(exc, rex.ResponseError):
        return False
    text = str(exc)
    return "NOGROUP" in text or text.startswith("UNBLOCKED")


class Broker:
    """Stream commands for one consumer."""

    def __init__(self, redis: Redis, blocking: Redis, consumer: str) -> None:
        self.redis = redis
        self.blocking = blocking
        self.consumer = consumer

    async def ensure_groups(self, pks: Sequence[PartitionKeys]) -> None:
        """Create the consumer group (from the stream's start) where missing.

        The consumer is registered at once: Redis 7 adds it only on its first
        delivery, and `stats` counts a queue's consumers from XINFO CONSUMERS.
        """
        for pk in pks:
            try:
                await self.redis.xgroup_create(pk.ready, GROUP, id="0", mkstream=True)
            except rex.ResponseError as exc:
                if "BUSYGROUP" not in str(exc) and not await self._group_exists(pk, exc):
                    raise
            # at maxmemory: XREADGROUP adds the consumer on its first delivery anyway
            with contextlib.suppress(rex.OutOfMemoryError):
                await self.redis.xgroup_createconsumer(pk.ready, GROUP, self.consumer)

    async def _group_exists(self, pk: PartitionKeys, exc: rex.ResponseError) -> bool:
        """At `maxmemory`, XGROUP CREATE fails with OOM even when the group exists."""
        if not isinstance(exc, rex.OutOfMemoryError):
            return False
        try:
            groups: Any = await self.redis.xinfo_groups(pk.ready)
        except rex.ResponseError:
            return False
        return any(g.get("name") in (GROUP, GROUP.encode()) for g in groups)

    async def read(
        self, pks: Sequence[PartitionKeys], *, count: int, block_ms: int | None
    ) -> list[Delivery]:
        """One XREADGROUP over all partitions: new entries, at most `count` each."""
        by_key = {pk.ready: pk for pk in pks}
        streams: dict[Any, Any] = dict.fromkeys(by_key, ">")
        try:
            reply = await self.blocking.xreadgroup(
                GROUP, self.consumer, streams, count=count, block=block_ms
            )
        except rex.ResponseError as exc:
            if not is_nogroup(exc):
                raise
            await self.ensure_groups(pks)
            return []
        out: list[Delivery] = []
        rows: Any = reply or []
        for stream, entries in rows:
            pk = by_key[stream.decode() if isinstance(stream, bytes) else stream]
            out.extend(Delivery(pk, entry_id, fields or {}) for entry_id, fields in entries)
        return out

    async def consumers(self, pk: PartitionKeys) -> list[dict[str, Any]]:
        """XINFO CONSUMERS of the group: name, pending, idle (ms)."""
        try:
            rows = await self.redis.xinfo_consumers(pk.ready, GROUP)
        except rex.ResponseError:
            return []
        return [
            {
                "name": r["name"].decode() if isinstance(r["name"], bytes) else r["name"],
                "pending": int(r["pending"]),
                "idle": int(r["idle"]),
            }
            for r in rows
        ]

    async def pending_count(self, pk: PartitionKeys) -> int:
        try:
            summary = await self.redis.xpending(pk.ready, GROUP)
        except rex.ResponseError:
            return 0
        return int(summary["pending"]) if summary else 0
