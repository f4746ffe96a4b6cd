"""The Streams surface of the engine: every non-script stream command lives here.

Reads return `Delivery` values (delivery.py); group creation, consumer listing and the
NOGROUP recovery are here too, so no other module issues a stream command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.keys import GROUP, PartitionKeys


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
        self,
        pks: Sequence[PartitionKeys],
        *,
        count: int,
        block_ms: int | None,
        sent: float = 0.0,
    ) -> list[Delivery]:
        """One XREADGROUP over all partitions: new entries, at most `count` each.

        `sent` (monotonic, just before this call) is when each delivery's lease begins.
        """
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
            out += [Delivery(pk, entry_id, fields or {}, 1, sent) for entry_id, fields in entries]
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
