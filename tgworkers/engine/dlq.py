"""Dead-letter queues: list, show, requeue, drop and export.

One service shared by the CLI, the admin HTTP API and the `dlq.replay` job, so
no operation has a second implementation. A queue's DLQ is one stream per
partition (`{prefix:queue:p}` + DLQ_SUFFIX); with one partition (the default) it
is a single stream. Entries keep the whole envelope, the reason and every
attempt's error. Nothing leaves a DLQ without an operator (requeue or drop).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.broker import xrange_entries
from tgworkers.engine.envelope import (
    Envelope,
    HistoryEntry,
    MalformedEntryError,
    entry_time_ms,
    from_fields,
    to_fields,
)
from tgworkers.engine.keys import Field, PartitionKeys
from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.scripts import Scripts
from tgworkers.errors import InputError

PAGE: Final = 500
_json = msgspec.json.Decoder()


class DeadJob(msgspec.Struct, frozen=True, kw_only=True):
    """A dead-lettered job as `dlq list --json` shows it (plus the error history)."""

    id: str
    name: str
    attempts: int
    reason: str
    failedAt: int  # noqa: N815 - the contract's field name
    payload: Any
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    entry: str = ""
    partition: int = 0

    def summary(self) -> dict[str, Any]:
        """The `dlq list` item (without the history)."""
        return {
            "id": self.id,
            "name": self.name,
            "attempts": self.attempts,
            "reason": self.reason,
            "failedAt": self.failedAt,
            "payload": self.payload,
        }


def _text(fields: dict[bytes, bytes], name: str, default: str = "") -> str:
    raw = fields.get(name.encode())
    return raw.decode(errors="replace") if raw is not None else default


def _int(text: str) -> int:
    """A number field of a DLQ record, 0 when it is garbage: listing never fails on one."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def dead_job(pk: PartitionKeys, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadJob:
    """Decode a dead-letter entry; a malformed original keeps its raw fields."""
    try:
        env: Envelope | None = from_fields(fields, entry_ms=entry_time_ms(entry_id))
    except MalformedEntryError:
        env = None
    payload: Any
    try:
        payload = _json.decode(env.payload) if env else _text(fields, Field.PAYLOAD)
    except msgspec.DecodeError:
        payload = env.payload.decode(errors="replace") if env else None
    return DeadJob(
        id=env.id if env else _text(fields, Field.ID),
        name=env.name if env else _text(fields, Field.NAME),
        attempts=env.attempt if env else 0,
        reason=_text(fields, Field.REASON),
        failedAt=_int(_text(fields, Field.FAILED_MS, "0")),
        payload=payload,
        errors=[msgspec.to_builtins(h) for h in env.history] if env else [],
        entry=entry_id.decode(),
        partition=pk.partition,
    )


class DeadLetters:
    """The DLQ operations of every queue."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout
        self.scripts = Scripts(redis)

    def _partitions(self, queue: str) -> list[PartitionKeys]:
        return self.layout.partitions(self.registry.queue(queue))

    async def count(self, queue: str) -> int:
        return sum([await self.redis.xlen(pk.dlq) for pk in self._partitions(queue)])

    async def iterate(self, queue: str) -> AsyncIterator[DeadJob]:
        """Every dead-lettered job of a queue, oldest first per partition, paged."""
        for pk in self._partitions(queue):
            start = "-"
            while True:
                page = await xrange_entries(self.redis, pk.dlq, start, count=PAGE)
                for entry_id, fields in page:
                    yield dead_job(pk, entry_id, fields)
                if len(page) < PAGE:
                    break
                start = "(" + page[-1][0].decode()

    async def list_jobs(self, queue: str, *, limit: int = 100) -> dict[str, Any]:
        """`dlq list --json`: `{"queue", "items": [...], "total"}`."""
        items: list[dict[str, Any]] = []
        async for job in self.iterate(queue):
            if len(items) >= limit:
                break
            items.append(job.summary())
        return {"queue": queue, "items": items, "total": await self.count(queue)}

    async def find(self, queue: str, job_id: str) -> DeadJob | None:
        proc = self.registry.queue(queue)
        for pk in self.layout.partitions(proc):
            state: Any = await self.redis.hget(pk.jobs, job_id)
            if state and state.startswith(b"x:"):
                entry = state[2:]
                found = await xrange_entries(self.redis, pk.dlq, entry, entry)
                if found:
                    return dead_job(pk, found[0][0], found[0][1])
        return None

    async def show(self, queue: str, job_id: str) -> DeadJob:
        job = await self.find(queue, job_id)
        if job is None:
            raise InputError(f"no dead-lettered job {job_id!r} in queue {queue!r}")
        return job

    async def requeue(
        self,
        queue: str,
        ids: Iterable[str] | None,
        *,
        reset_attempts: bool = False,
        by: str = "operator",
    ) -> dict[str, Any]:
        """Move jobs back onto their queue, same ids; `ids=None` means all."""
        targets, missing = await self._targets(queue, ids)
        requeued: list[str] = []
        skipped = list(missing)
        now = int(time.time() * 1000)
        for pk, job in targets:
            raw = await xrange_entries(self.redis, pk.dlq, job.entry, job.entry)
            if not raw:
                skipped.append(job.id)
                continue
            fields = self._replay_fields(raw[0][1], now=now, by=by, reset=reset_attempts)
            ok = await self.scripts.dlq_requeue(pk, [(job.entry.encode(), job.id, fields)])
            (requeued if ok[0] else skipped).append(job.id)
        return {"queue": queue, "requeued": len(requeued), "skipped": skipped, "ids": requeued}

    @staticmethod
    def _replay_fields(
        fields: dict[bytes, bytes], *, now: int, by: str, reset: bool
    ) -> list[str | bytes]:
        try:
            env = from_fields(fields, entry_ms=now)
        except MalformedEntryError:
            skip = {Field.REASON.encode(), Field.FAILED_MS.encode()}
            return [x for k, v in fields.items() if k not in skip for x in (k, v)]
        message = f"replayed by {by}" + (" (attempts reset)" if reset else "")
        note = HistoryEntry(attempt=env.attempt, at_ms=now, kind="replayed", message=message)
        env = msgspec.structs.replace(
            env, attempt=1 if reset else env.attempt, history=(*env.history, note), due_ms=None
        )
        return to_fields(env)

    async def drop(self, queue: str, ids: Iterable[str] | None) -> dict[str, Any]:
        targets, _ = await self._targets(queue, ids)
        dropped = 0
        for pk, job in targets:
            dropped += await self.scripts.dlq_drop(pk, [(job.entry.encode(), job.id)])
        return {"queue": queue, "dropped": dropped}

    async def _targets(
        self, queue: str, ids: Iterable[str] | None
    ) -> tuple[list[tuple[PartitionKeys, DeadJob]], list[str]]:
        """The (partition, job) pairs to act on, and the ids not found in the DLQ."""
        by_pk = {pk.partition: pk for pk in self._partitions(queue)}
        if ids is None:
            return [(by_pk[j.partition], j) async for j in self.iterate(queue)], []
        out, missing = [], []
        for job_id in ids:
            job = await self.find(queue, job_id)
            if job is None:
                missing.append(job_id)
            else:
                out.append((by_pk[job.partition], job))
        return out, missing

    async def export(self, queue: str) -> AsyncIterator[bytes]:
        """JSON lines, one per dead-lettered job, with its history under `errors`."""
        enc = msgspec.json.Encoder()
        async for job in self.iterate(queue):
            yield enc.encode({**job.summary(), "errors": job.errors}) + b"\n"
