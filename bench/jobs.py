"""Job types for the benchmarks: no-op, ones that record their own timing, a sleeper, a reject."""

from __future__ import annotations

import asyncio
import time

import msgspec

from tgworkers.engine import (
    Done,
    JobContext,
    JobType,
    Outcome,
    PermanentError,
    Processor,
    Schedule,
)
from tgworkers.jobs.builtin import NOOP_PROCESSOR

LATENCY_KEY = "bench:latency"


class Timed(msgspec.Struct, frozen=True, kw_only=True):
    t: float  # time.time() the job was enqueued (or is due), same host clock


async def record_lateness(ctx: JobContext, p: Timed) -> Outcome:
    await ctx.redis.rpush(LATENCY_KEY, f"{(time.time() - p.t) * 1000:.3f}")
    return Done()


TIMED = JobType(name="bench.timed", payload=Timed, handler=record_lateness)
BENCH_TIMED = Processor(name="bench.timed", job_types=(TIMED,), concurrency=100)


class Empty(msgspec.Struct, frozen=True):
    pass


async def record_fire_lag(ctx: JobContext, p: Empty) -> Outcome:
    tick_ms = int(ctx.job_id.rsplit(":", 1)[1])  # cron:{schedule}:{tick ms}
    await ctx.redis.rpush(LATENCY_KEY, f"{time.time() * 1000 - tick_ms:.3f}")
    return Done()


TICK = JobType(name="bench.tick", payload=Empty, handler=record_fire_lag)
BENCH_TICK = Processor(
    name="bench.tick", job_types=(TICK,), schedules=(Schedule(job="bench.tick", default="1"),)
)

LATE_KEY = "bench:late"
LATE_FLUSH = 1000
_late: list[str] = []


async def record_late(ctx: JobContext, p: Timed) -> Outcome:
    """`<due s> <start - due ms>`, sent 1,000 at a time: a million cost 1,000 RPUSHes.

    The bench runs one worker process and a multiple of `LATE_FLUSH` jobs, so every
    sample reaches Redis; the buffer is swapped before the await, so none is lost.
    """
    global _late
    _late.append(f"{p.t:.3f} {(time.time() - p.t) * 1000:.2f}")
    if len(_late) >= LATE_FLUSH:
        batch, _late = _late, []
        await ctx.redis.rpush(LATE_KEY, *batch)
    return Done()


LATE = JobType(name="bench.late", payload=Timed, handler=record_late)
BENCH_LATE = Processor(name="bench.late", job_types=(LATE,), concurrency=100)


class Nap(msgspec.Struct, frozen=True, kw_only=True):
    ms: int = 0


async def nap(ctx: JobContext, p: Nap) -> Outcome:
    """Holds its slot `ms` (0: yields once): 100 of them in flight fill concurrency 100."""
    await asyncio.sleep(p.ms / 1000)
    return Done()


NAP = JobType(name="bench.nap", payload=Nap, handler=nap)
BENCH_NAP = Processor(name="bench.nap", job_types=(NAP,), concurrency=100)


class Bet(msgspec.Struct, frozen=True, kw_only=True):
    bet_id: str
    amount: int


async def reject(ctx: JobContext, p: Bet) -> Outcome:
    """Dead-letters at once as a peer's 404 would: one history record, status and body."""
    raise PermanentError("bet not found", status=404, body='{"code":"bet_not_found"}')


REJECT = JobType(name="bench.reject", payload=Bet, handler=reject)
BENCH_REJECT = Processor(name="bench.reject", job_types=(REJECT,), concurrency=100)

PROCESSORS = (NOOP_PROCESSOR, BENCH_TIMED, BENCH_TICK, BENCH_LATE, BENCH_NAP, BENCH_REJECT)
