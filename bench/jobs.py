"""Job types for the benchmarks: no-op, and two that record their own timing."""

from __future__ import annotations

import time

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome, Processor, Schedule
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

PROCESSORS = (NOOP_PROCESSOR, BENCH_TIMED, BENCH_TICK)
