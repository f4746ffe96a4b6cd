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

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.cursor import parse_cursor
from tgworkers.engine.ops.entries import envelope_of, payload_of
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.envelope import (
    HistoryEntry,
    MalformedEntryError,
    from_fields,
    to_fields,
)
from tgworkers.engine.wire.keys import Field, PartitionKeys
from tgworkers.engine.wire.replies import text
from tgworkers.engine.wire.scripts import Scripts
from tgworkers.engine.wire.streams import xrange_entries
from tgworkers.errors import InputError

PAGE: Final = 500


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
    return text(raw) if raw is not None else default


def _int(text: str) -> int:
    """A number field of a DLQ record, 0 when it is garbage: listing never fails on one."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def dead_job(pk: PartitionKeys, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadJob:
    """Decode a dead-letter entry; a malformed original keeps its raw fields."""
    env = envelope_of(fields, entry_id)
    return DeadJob(
        id=env.id if env else _text(fields, Field.ID),
        name=env.name if env else _text(fields, Field.NAME),
        attempts=env.attempt if env else 0,
        reason=_text(fields, Field.REASON),
        failedAt=_int(_text(fields, Field.FAILED_MS, "0")),
        payload=payload_of(env.payload) if env else _text(fields, Field.PAYLOAD),
        errors=[msgspec.to_builtins(h) for h in env.history] if env else [],
        entry=text(entry_id),
        partition=pk.partition,
    )


class DeadLetters:
    """The DLQ operations of every queue."""

    def __init__(
        self, redis: Redis, registry: Registry, layout: Layout, scripts: Scripts | None = None
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout
        self.scripts = scripts or Scripts(redis)  # the process's one, when it is handed in

    def _partitions(self, queue: str) -> list[PartitionKeys]:
        return self.layout.partitions(self.registry.queue(queue))

    async def count(self, queue: str) -> int:
        return sum([await self.redis.xlen(pk.dlq) for pk in self._partitions(queue)])

    def iterate(self, queue: str) -> AsyncIterator[DeadJob]:
        """Every dead-lettered job of a queue, oldest first per partition, paged."""
        return self.iterate_from(queue, None)

    async def iterate_from(self, queue: str, cursor: str | None) -> AsyncIterator[DeadJob]:
        """Like `iterate`, after `cursor` (`<partition>:<entry id>`; `InputError` when bad)."""
        after = parse_cursor(cursor)
        for pk in self._partitions(queue):
            if after is not None and pk.partition < after.partition:
                continue
            resume = after is not None and pk.partition == after.partition
            start = "(" + after.position if after is not None and resume else "-"
            while True:
                page = await xrange_entries(self.redis, pk.dlq, start, count=PAGE)
                for entry_id, fields in page:
                    yield dead_job(pk, entry_id, fields)
                if len(page) < PAGE:
                    break
                start = "(" + page[-1][0].decode()

    async def page(self, queue: str, *, limit: int, cursor: str | None = None) -> list[DeadJob]:
        """At most `limit` dead jobs after `cursor`, oldest first (reads at most one more)."""
        jobs: list[DeadJob] = []
        async for job in self.iterate_from(queue, cursor):
            jobs.append(job)
            if len(jobs) > limit:
                break
        return jobs

    async def list_jobs(
        self, queue: str, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        """`dlq list --json`: `{"queue", "items": [...], "total", "next"}` (`next`: a cursor)."""
        jobs = await self.page(queue, limit=limit, cursor=cursor)
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return {
            "queue": queue,
            "items": [j.summary() for j in jobs],
            "total": await self.count(queue),
            "next": f"{jobs[-1].partition}:{jobs[-1].entry}" if more and jobs else None,
        }

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
        requeued: list[str] = []
        skipped: list[str] = []
        now = int(time.time() * 1000)
        async for pk, job in self._targets(queue, ids, skipped):
            raw = await xrange_entries(self.redis, pk.dlq, job.entry, job.entry)
            if not raw:
                skipped.append(job.id)
                continue
            fields = self._replay_fields(raw[0][1], now=now, by=by, reset=reset_attempts)
            ok = await self.scripts.dlq_requeue(pk, [(job.entry.encode(), job.id, fields)])
            (requeued if ok[0] else skipped).append(job.id)
        return {"queue": queue, "requeued": len(requeued), "skipped": skipped, "ids": requeued,
                "resetAttempts": reset_attempts}  # fmt: skip

    @staticmethod
    def _replay_fields(
        fields: dict[bytes, bytes], *, now: int, by: str, reset: bool
    ) -> list[str | bytes]:
        try:
            env = from_fields(fields, entry_ms=now)
        except MalformedEntryError:
            skip = {Field.REASON.encode(), Field.FAILED_MS.encode()}
            return [x for k, v in fields.items() if k not in skip for x in (k, v)]
        # the run after a replay is a new attempt (never the dead one's number again):
        # attempt 1 with `reset`, else the next one, which the retry policy lets fail
        # only once more when the attempts were exhausted
        nxt = 1 if reset else env.attempt + 1
        message = f"replayed by {by}: the next run is attempt {nxt}" + (
            " (attempts reset)" if reset else ""
        )
        note = HistoryEntry(attempt=env.attempt, at_ms=now, kind="replayed", message=message)
        passed = env.expires_ms is not None and env.expires_ms <= now  # else it expires again
        env = msgspec.structs.replace(
            env, attempt=nxt, history=(*env.history, note), due_ms=None,
            expires_ms=None if passed else env.expires_ms,
        )  # fmt: skip
        return to_fields(env)

    async def drop(self, queue: str, ids: Iterable[str] | None) -> dict[str, Any]:
        dropped = 0
        async for pk, job in self._targets(queue, ids, []):
            dropped += await self.scripts.dlq_drop(pk, [(job.entry.encode(), job.id)])
        return {"queue": queue, "dropped": dropped}

    async def _targets(
        self, queue: str, ids: Iterable[str] | None, missing: list[str]
    ) -> AsyncIterator[tuple[PartitionKeys, DeadJob]]:
        """The (partition, job) pairs to act on, one at a time; unknown ids go to `missing`.

        `ids=None` (all) walks the DLQ page by page while the caller removes what it
        acted on (XRANGE resumes after the last id seen), so acting on 100,000 dead
        letters never holds them all in the worker's memory.
        """
        by_pk = {pk.partition: pk for pk in self._partitions(queue)}
        if ids is None:
            async for dead in self.iterate(queue):
                yield by_pk[dead.partition], dead
            return
        for job_id in ids:
            found = await self.find(queue, job_id)
            if found is None:
                missing.append(job_id)
            else:
                yield by_pk[found.partition], found

    async def export(
        self, queue: str, *, cursor: str | None = None, limit: int | None = None
    ) -> AsyncIterator[bytes]:
        """JSON lines, one per dead-lettered job, with its history under `errors`.

        Streamed page by page (memory stays flat); `limit` and `cursor` export one
        page, resuming after a job's `<partition>:<entry>` position.
        """
        enc = msgspec.json.Encoder()
        written = 0
        async for job in self.iterate_from(queue, cursor):
            if limit is not None and written >= limit:
                break
            written += 1
            line = {**job.summary(), "errors": job.errors, "cursor": f"{job.partition}:{job.entry}"}
            yield enc.encode(line) + b"\n"
