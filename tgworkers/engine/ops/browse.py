"""Read-only views of a queue's jobs for the console: ready, delayed, in flight, one job.

Every listing is a page of at most `limit` (the caller caps it at 1,000) read with
bounded commands: XRANGE … COUNT after the group's last-delivered id (ready),
ZRANGE … LIMIT (delayed), XPENDING … COUNT (in flight), then the entries of that
page only. A cursor (`<partition>:<position>`) resumes where a page ended. A job
is found by id through the partition's `jobs` hash (`r:<entry>`, `d`,
`x:<dlq entry>`), so a search is O(partitions), not a scan.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.cursor import parse_cursor
from tgworkers.engine.ops.entries import envelope_of, payload_of
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.envelope import (
    fields_from_json,
)
from tgworkers.engine.wire.keys import GROUP, PartitionKeys
from tgworkers.engine.wire.replies import text
from tgworkers.engine.wire.streams import xrange_entries

Kind = Literal["ready", "delayed", "inflight"]


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """One job in a listing or the detail page (never holds a secret: payloads are job data)."""

    id: str
    name: str
    state: str
    attempt: int
    enqueued_ms: int
    due_ms: int | None = None
    expires_ms: int | None = None
    origin: str | None = None
    traceparent: str | None = None
    history: list[dict[str, Any]] = msgspec.field(default_factory=list)
    payload: Any = None
    consumer: str | None = None
    deliveries: int | None = None
    idle_ms: int | None = None
    partition: int = 0
    entry: str = ""

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id inside `traceparent` (`00-<trace>-<span>-<flags>`)."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None  # noqa: PLR2004


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of jobs and the cursor of the next one."""

    items: list[JobRow]
    next: str | None


def row_of(fields: dict[bytes, bytes], *, state: str, entry: str, pk: PartitionKeys) -> JobRow:
    """A job row from stream fields; a malformed entry still shows its id and name."""
    env = envelope_of(fields, entry)
    if env is None:
        return JobRow(id=text(fields.get(b"id", b"?")), name=text(fields.get(b"name", b"?")),
                      state=state, attempt=0, enqueued_ms=0, partition=pk.partition,
                      entry=entry)  # fmt: skip
    return JobRow(
        id=env.id, name=env.name, state=state, attempt=env.attempt, enqueued_ms=env.enqueued_ms,
        due_ms=env.due_ms, expires_ms=env.expires_ms, origin=env.origin,
        traceparent=env.traceparent, history=[msgspec.to_builtins(h) for h in env.history],
        payload=payload_of(env.payload), partition=pk.partition, entry=entry,
    )  # fmt: skip


class QueueBrowser:
    """Pages through a queue's jobs; finds one job by id."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout

    def _partitions(self, queue: str) -> list[PartitionKeys]:
        return self.layout.partitions(self.registry.queue(queue))

    async def page(self, queue: str, kind: Kind, *, limit: int, cursor: str | None) -> JobPage:
        """At most `limit` jobs of one kind after `cursor`; `InputError` for a malformed cursor."""
        after = parse_cursor(cursor, position="due" if kind == "delayed" else "entry")
        items: list[JobRow] = []
        next_cursor: str | None = None
        for pk in self._partitions(queue):
            if after is not None and pk.partition < after.partition:
                continue
            start = (
                after.position if after is not None and after.partition == pk.partition else None
            )
            rows, more = await self._rows(pk, kind, start, limit - len(items))
            items += rows
            if more:
                next_cursor = f"{pk.partition}:{self._position(rows[-1], kind)}"
                break
        return JobPage(items=items, next=next_cursor)

    @staticmethod
    def _position(row: JobRow, kind: Kind) -> str:
        return f"{row.due_ms}|{row.id}" if kind == "delayed" else row.entry

    async def _rows(
        self, pk: PartitionKeys, kind: Kind, start: str | None, limit: int
    ) -> tuple[list[JobRow], bool]:
        if kind == "ready":
            return await self._ready(pk, start, limit)
        if kind == "delayed":
            return await self._delayed(pk, start, limit)
        return await self._inflight(pk, start, limit)

    async def _ready(
        self, pk: PartitionKeys, start: str | None, limit: int
    ) -> tuple[list[JobRow], bool]:
        if start is None:
            start = await self._last_delivered(pk)
        entries = await xrange_entries(self.redis, pk.ready, "(" + start, count=limit + 1)
        rows = [row_of(f, state="ready", entry=text(e), pk=pk) for e, f in entries[:limit]]
        return rows, len(entries) > limit

    async def _last_delivered(self, pk: PartitionKeys) -> str:
        try:
            groups: Any = await self.redis.xinfo_groups(pk.ready)
        except rex.ResponseError:  # no stream yet: nothing delivered
            return "0-0"
        for g in groups:
            if text(g.get("name", "")) == GROUP:
                return text(g.get("last-delivered-id", "0-0"))
        return "0-0"

    async def _delayed(
        self, pk: PartitionKeys, start: str | None, limit: int
    ) -> tuple[list[JobRow], bool]:
        low = f"({start.partition('|')[0]}" if start else "-inf"  # a parsed `<due>|<id>`
        ids: Any = await self.redis.zrangebyscore(
            pk.delayed, low, "+inf", start=0, num=limit + 1, withscores=True
        )
        page = ids[:limit]
        raw: Any = await self.redis.hmget(pk.delayed_jobs, [i for i, _ in page]) if page else []
        rows = []
        for (job_id, due), blob in zip(page, raw, strict=True):
            fields = fields_from_json(blob) if blob else {b"id": job_id, b"name": b"?"}
            row = row_of(fields, state="delayed", entry="", pk=pk)
            rows.append(msgspec.structs.replace(row, due_ms=int(due)))
        return rows, len(ids) > limit

    async def _inflight(
        self, pk: PartitionKeys, start: str | None, limit: int
    ) -> tuple[list[JobRow], bool]:
        low = "(" + start if start else "-"
        try:
            pending: Any = await self.redis.xpending_range(pk.ready, GROUP, low, "+", limit + 1)
        except rex.ResponseError:  # no stream or group yet: nothing in flight
            return [], False
        rows = []
        for p in pending[:limit]:
            entry = text(p["message_id"])
            found = await xrange_entries(self.redis, pk.ready, entry, entry)
            fields = found[0][1] if found else {b"id": b"?", b"name": b"(entry deleted)"}
            row = row_of(fields, state="in flight", entry=entry, pk=pk)
            rows.append(msgspec.structs.replace(
                row, consumer=text(p["consumer"]), deliveries=int(p["times_delivered"]),
                idle_ms=int(p["time_since_delivered"]),
            ))  # fmt: skip
        return rows, len(pending) > limit

    async def find(self, queue: str, job_id: str) -> JobRow | None:
        """The job with this id wherever it is now (ready, in flight, delayed, dead)."""
        for pk in self._partitions(queue):
            state: Any = await self.redis.hget(pk.jobs, job_id)
            if not state:
                continue
            return await self._located(pk, job_id, text(state))
        return None

    async def _located(self, pk: PartitionKeys, job_id: str, state: str) -> JobRow | None:
        if state == "d":
            blob: Any = await self.redis.hget(pk.delayed_jobs, job_id)
            due: Any = await self.redis.zscore(pk.delayed, job_id)
            if not blob:
                return None
            row = row_of(fields_from_json(blob), state="delayed", entry="", pk=pk)
            return msgspec.structs.replace(row, due_ms=int(due) if due is not None else None)
        kind, _, entry = state.partition(":")
        stream = pk.dlq if kind == "x" else pk.ready
        found = await xrange_entries(self.redis, stream, entry, entry)
        if not found:
            return None
        row = row_of(found[0][1], state="dead" if kind == "x" else "ready", entry=entry, pk=pk)
        return row if kind == "x" else await self._with_delivery(pk, row)

    async def _with_delivery(self, pk: PartitionKeys, row: JobRow) -> JobRow:
        """A ready-stream job is in flight when a consumer holds it: who, how often, how long."""
        try:
            pending: Any = await self.redis.xpending_range(pk.ready, GROUP, row.entry, row.entry, 1)
        except rex.ResponseError:  # no group yet
            return row
        if not pending:
            return row
        p = pending[0]
        return msgspec.structs.replace(
            row, state="in flight", consumer=text(p["consumer"]),
            deliveries=int(p["times_delivered"]), idle_ms=int(p["time_since_delivered"]),
        )  # fmt: skip
