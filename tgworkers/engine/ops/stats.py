"""Queue statistics and the schedule ledger: the read side of operations.

One `StatsReader.snapshot()` is what `stats --json` prints and what
`GET /admin/v1/queues` answers, so the two can never disagree in shape.

Cost: two pipelined round trips per call whatever the number of queues and
partitions (XINFO GROUPS / CONSUMERS, XLEN, ZCARD, HGETALL per partition and the
samples of each queue, then one XRANGE COUNT 1 per partition for the oldest
undelivered entry), plus one write pipeline when a rate sample is due.

Rates: every reader keeps a bounded ZSET of counter samples per queue
(`GlobalKeys.samples(queue)`, member `<ms>:<processed>:<failed>`, score ms). It
adds a sample when the newest is over `SAMPLE_EVERY_MS` old and trims samples
older than `SAMPLE_KEEP_MS`, so the set holds at most ~60 members. The rate per
minute is `(total now - total then) * 60000 / (now - then)` against the newest
sample at least a minute old, or, while none is, the oldest sample at least
`SAMPLE_EVERY_MS` old (a shorter window scaled to a minute); 0 without one.
Whoever reads stats (the console, `stats --watch`, a Prometheus scrape, and
the HTTP server's own sampler every 20 s) keeps the samples fresh, and the first
read of each minute also adds that minute's bucket for the console's charts
(engine/ops/history.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live, live
from tgworkers.engine.ops.control import CONFIGURATION, OPERATOR
from tgworkers.engine.ops.history import add_bucket, minute_of
from tgworkers.engine.ops.rates import RateLimitState, read_limits
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.schedule.scheduler import (
    SchedulesDocument,
    build_schedules,
    schedules_document,
)
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.keys import GROUP, PartitionKeys
from tgworkers.engine.wire.replies import text

LIVE_CONSUMER_MS: Final = 10_000
SAMPLE_EVERY_MS: Final = 10_000
SAMPLE_KEEP_MS: Final = 600_000
RATE_WINDOW_MS: Final = 60_000


class Rates(msgspec.Struct, frozen=True, kw_only=True):
    """Jobs per minute over (about) the last minute."""

    processed: int = 0
    failed: int = 0


class QueueStats(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One queue in `stats --json`, summed over its partitions."""

    name: str
    ready: int
    inflight: int
    delayed: int
    dlq: int
    paused: bool
    consumers: int
    oldest_ready_age_ms: int
    processed: int
    failed: int
    retried: int
    rate_per_min: Rates
    paused_by: list[str] = msgspec.field(default_factory=list)
    """Who holds the pause: `operator` (pause/resume), `configuration` (PAUSED_QUEUES)."""


class StatsDocument(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`stats --json` and `GET /admin/v1/queues`: `{"queues": [...], "at": ms}` (+ `limits`)."""

    queues: list[QueueStats]
    at: int
    limits: list[RateLimitState] = msgspec.field(default_factory=list)
    """Every shared rate limit configured (`RATE_*_PER_S`) with its counters."""


def _int(raw: Any) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def _group(reply: Any) -> dict[str, Any] | None:
    """Our consumer group's XINFO GROUPS row, or None (no stream / no group yet)."""
    if isinstance(reply, Exception) or not reply:
        return None
    for row in reply:
        if text(row.get("name", "")) == GROUP:
            return dict(row)
    return None


def entry_ms(entry_id: Any) -> int:
    return _int(text(entry_id).split("-", 1)[0])


class _Partial:
    """Running sums for one queue while its partitions' replies are read."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(
            ("ready", "inflight", "delayed", "dlq", "processed", "failed", "retried"), 0
        )
        self.consumers: set[str] = set()
        self.cursors: list[tuple[PartitionKeys, str]] = []
        self.samples: tuple[Any, Any, Any] = ([], [], [])
        self.last_minute = 0


class StatsReader:
    """Builds the stats document of every known queue (see the module docstring)."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout

    def _queues(self) -> list[Processor]:
        return sorted(self.registry.processors.values(), key=lambda p: p.name)

    async def snapshot(self) -> StatsDocument:
        now = int(time.time() * 1000)
        procs = self._queues()
        parts = await self._read_counts(procs, now)
        paused = parts.pop("__paused__")
        oldest = await self._oldest_ready([c for p in parts.values() for c in p.cursors])
        await self._record_samples(parts, now)
        queues = [self._queue(p.name, parts[p.name], paused, oldest, now) for p in procs]
        queue_of = {p.env_name: p.queue for p in procs}
        limits = await read_limits(self.redis, self.layout.settings, queue_of)
        return StatsDocument(queues=queues, at=now, limits=limits)

    async def _read_counts(self, procs: list[Processor], now: int) -> dict[str, Any]:
        """Round trip 1: every per-partition count and each queue's samples."""
        g = self.layout.globals
        pipe: Any = self.redis.pipeline(transaction=False)  # queued calls are not awaitables
        pipe.hgetall(g.control)
        pipe.zrangebyscore(g.workers, now - LIVE_CONSUMER_MS, "+inf")
        plan = [(proc.name, self.layout.partitions(proc)) for proc in procs]
        for name, pks in plan:
            for pk in pks:
                pipe.xinfo_groups(pk.ready)
                pipe.xinfo_consumers(pk.ready, GROUP)
                pipe.xlen(pk.ready)
                pipe.zcard(pk.delayed)
                pipe.xlen(pk.dlq)
                pipe.hgetall(pk.stats)
            key = g.samples(name)
            pipe.zrevrangebyscore(key, now - RATE_WINDOW_MS, "-inf", start=0, num=1)
            pipe.zrangebyscore(key, "-inf", now - SAMPLE_EVERY_MS, start=0, num=1)
            pipe.zrevrange(key, 0, 0, withscores=True)
            pipe.zrevrange(g.minutes(name), 0, 0, withscores=True)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        self._raise_connection_errors(replies)
        control, live = replies[0], {text(x) for x in replies[1]}
        parts: dict[str, Any] = {p.name: _Partial() for p in procs}
        i = 2
        for name, pks in plan:
            for pk in pks:
                self._add_partition(parts[name], pk, replies[i : i + 6], live)
                i += 6
            parts[name].samples = (replies[i], replies[i + 1], replies[i + 2])
            parts[name].last_minute = int(replies[i + 3][0][1]) if replies[i + 3] else 0
            i += 4
        operator = {text(k) for k, v in control.items() if v == b"paused"}
        parts["__paused__"] = {
            OPERATOR: operator, CONFIGURATION: set(self.layout.settings.paused_queues),
        }  # fmt: skip
        return parts

    @staticmethod
    def _raise_connection_errors(replies: Iterable[Any]) -> None:
        for reply in replies:
            if isinstance(reply, rex.ConnectionError | rex.TimeoutError):
                raise reply

    @staticmethod
    def _add_partition(acc: _Partial, pk: PartitionKeys, r: list[Any], live: set[str]) -> None:
        groups, consumers, xlen, delayed, dlq, totals = r
        group = _group(groups)
        pending = _int(group.get("pending")) if group else 0
        length = 0 if isinstance(xlen, Exception) else _int(xlen)
        lag = group.get("lag") if group else None
        # acked entries are deleted, so XLEN - PEL is what no worker has taken yet;
        # Redis's own `lag` is exact when it knows it
        undelivered = _int(lag) if lag is not None else max(0, length - pending)
        acc.counts["ready"] += length if group is None else undelivered
        acc.counts["inflight"] += pending
        acc.counts["delayed"] += 0 if isinstance(delayed, Exception) else _int(delayed)
        acc.counts["dlq"] += 0 if isinstance(dlq, Exception) else _int(dlq)
        if not isinstance(totals, Exception):
            for field in ("processed", "failed", "retried"):
                acc.counts[field] += _int(totals.get(field.encode()))
        if not isinstance(consumers, Exception):
            acc.consumers |= {text(c["name"]) for c in consumers} & live
        if length and (group is None or undelivered):
            last = text(group["last-delivered-id"]) if group else "0-0"
            acc.cursors.append((pk, last))

    async def _oldest_ready(self, cursors: list[tuple[PartitionKeys, str]]) -> dict[str, int]:
        """Round trip 2: the entry time of each partition's oldest undelivered job."""
        if not cursors:
            return {}
        pipe: Any = self.redis.pipeline(transaction=False)  # queued calls are not awaitables
        for pk, last in cursors:
            pipe.xrange(pk.ready, min="(" + last, max="+", count=1)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        self._raise_connection_errors(replies)
        oldest: dict[str, int] = {}
        for (pk, _), reply in zip(cursors, replies, strict=True):
            if reply and not isinstance(reply, Exception):
                ms = entry_ms(reply[0][0])
                oldest[pk.queue] = min(oldest.get(pk.queue, ms), ms)
        return oldest

    async def _record_samples(self, parts: dict[str, _Partial], now: int) -> None:
        """Add a counter sample per queue when the newest is over 10 s old; trim.

        Also this minute's bucket for the console charts (engine/ops/history.py), once.
        """
        pipe: Any = self.redis.pipeline(transaction=False)  # queued calls are not awaitables
        due = False
        for name, acc in parts.items():
            if acc.last_minute < minute_of(now):
                totals = (acc.counts["processed"], acc.counts["failed"])
                add_bucket(pipe, self.layout.globals, name, now, totals)
                due = True
            newest = acc.samples[2]
            if newest and now - int(newest[0][1]) < SAMPLE_EVERY_MS:
                continue
            key = self.layout.globals.samples(name)
            member = f"{now}:{acc.counts['processed']}:{acc.counts['failed']}"
            pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", now - SAMPLE_KEEP_MS)
            due = True
        if due:
            await pipe.execute()

    @staticmethod
    def _rates(acc: _Partial, now: int) -> Rates:
        minute_old, short_old, _ = acc.samples
        base = minute_old or short_old
        if not base:
            return Rates()
        at, processed, failed = (_int(x) for x in text(base[0]).split(":"))
        span = max(1, now - at)

        def per_min(delta: int) -> int:
            return max(0, round(delta * RATE_WINDOW_MS / span))

        return Rates(
            processed=per_min(acc.counts["processed"] - processed),
            failed=per_min(acc.counts["failed"] - failed),
        )

    def _queue(
        self, name: str, acc: _Partial, paused: dict[str, set[str]], oldest: dict[str, int],
        now: int,
    ) -> QueueStats:  # fmt: skip
        c = acc.counts
        holders = [who for who in (OPERATOR, CONFIGURATION) if name in paused[who]]
        return QueueStats(
            name=name, ready=c["ready"], inflight=c["inflight"], delayed=c["delayed"],
            dlq=c["dlq"], paused=bool(holders), paused_by=holders, consumers=len(acc.consumers),
            oldest_ready_age_ms=max(0, now - oldest[name]) if name in oldest else 0,
            processed=c["processed"], failed=c["failed"], retried=c["retried"],
            rate_per_min=self._rates(acc, now),
        )  # fmt: skip


class ScheduleLedger:
    """`schedules --json`: every declared schedule with its ledger record.

    One implementation with the scheduler (`scheduler.schedules_document`): declared
    schedules are listed even before any worker has fired them, and an enqueued
    tick's outcome is resolved from where its job is now.
    """

    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        settings: EngineSettings | Live[EngineSettings],
        client: Client,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.live = live(settings)
        self.client = client

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now: `CRON_*` and `SCHEDULES_TZ` follow a hot reload."""
        return self.live.value

    async def read(self) -> SchedulesDocument:
        schedules = build_schedules(list(self.registry.processors.values()), self.settings)
        return await schedules_document(
            self.redis, self.client, schedules, self.settings.queue_prefix
        )
