"""Per-minute counter buckets in Redis: the console's processed/failed charts.

The stats sampler (`StatsReader.snapshot`, which each worker serving HTTP also runs
every `SAMPLER_EVERY_S`, `bootstrap/http_upkeep.py`) adds, at most once a minute per queue, one
member `<minute>:<processed>:<failed>` of the running totals to a sorted set
scored by the minute, and trims members older than a day: at most ~1,441
members per queue, whatever the traffic. Nothing lives in worker memory, so any
replica's console draws the same chart, and a restart loses nothing.

A chart point is the difference between two consecutive buckets divided by the
minutes between them (a gap, when no sampler ran, spreads evenly); a counter
that went down (stats reset) counts as zero.
"""

from __future__ import annotations

import itertools
from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.wire.keys import GlobalKeys
from tgworkers.engine.wire.replies import text

MINUTE_MS: Final = 60_000
KEEP_MS: Final = 24 * 60 * MINUTE_MS + MINUTE_MS


class Point(msgspec.Struct, frozen=True):
    """Jobs per minute ending at `minute` (Unix ms of the minute's start)."""

    minute: int
    processed: float
    failed: float


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def add_bucket(pipe: Any, keys: GlobalKeys, queue: str, now: int, totals: tuple[int, int]) -> None:
    """Queue (on a pipeline) this minute's bucket and the day's trim."""
    minute = minute_of(now)
    key = keys.minutes(queue)
    pipe.zadd(key, {f"{minute}:{totals[0]}:{totals[1]}": minute})
    pipe.zremrangebyscore(key, "-inf", now - KEEP_MS)


def _buckets(rows: list[Any]) -> list[tuple[int, int, int]]:
    """(minute, processed, failed) sorted, one per minute (the first sampler wins)."""
    seen: dict[int, tuple[int, int, int]] = {}
    for raw in rows:
        parts = text(raw).split(":")
        if len(parts) == 3 and all(p.isdigit() for p in parts):  # noqa: PLR2004
            minute, processed, failed = (int(p) for p in parts)
            seen.setdefault(minute, (minute, processed, failed))
    return sorted(seen.values())


def rates(rows: list[Any]) -> list[Point]:
    """Per-minute rates between consecutive buckets."""
    buckets = _buckets(rows)
    points = []
    for (m0, p0, f0), (m1, p1, f1) in itertools.pairwise(buckets):
        span = max(1, (m1 - m0) // MINUTE_MS)
        points.append(Point(m1, max(0, p1 - p0) / span, max(0, f1 - f0) / span))
    return points


class MinuteHistory:
    """Reads the buckets of one or all queues."""

    def __init__(self, redis: Redis, keys: GlobalKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def series(self, queues: list[str], *, since_ms: int) -> list[Point]:
        """Rates summed over `queues` per minute, from `since_ms` on."""
        pipe: Any = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.zrangebyscore(self.keys.minutes(queue), since_ms - MINUTE_MS, "+inf")
        replies: list[Any] = await pipe.execute()
        total: dict[int, list[float]] = {}
        for rows in replies:
            for point in rates(rows):
                acc = total.setdefault(point.minute, [0.0, 0.0])
                acc[0] += point.processed
                acc[1] += point.failed
        return [Point(m, p, f) for m, (p, f) in sorted(total.items()) if m >= since_ms]
