"""Job types the tests run through the real engine (also in worker subprocesses).

Every run appends a JSON record to the Redis list `test:runs`, so a test can see
exactly which jobs ran, how often, on which process, and for how long.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import time

import anyio
import msgspec

from tgworkers.engine import (
    Done,
    JobContext,
    JobType,
    NotDue,
    Outcome,
    PermanentError,
    Processor,
    RetryLater,
    Schedule,
)
from tgworkers.jobs.builtin import NOOP_PROCESSOR

RUNS_KEY = "test:runs"
GC_FROZEN_KEY = "test:gc_frozen"
"""Mode `gc`: how many objects the worker's process had frozen out of the cyclic GC."""
OVERLAPS_KEY = "test:overlaps"
"""Mode `track`: one item per run that started while another run of its key was running."""
CLEANUPS_KEY = "test:cleanups"
"""Mode `track` with `cleanup_ms`: one item per cancelled run that finished its clean-up."""


class Work(msgspec.Struct, frozen=True, kw_only=True):
    n: int = 0
    key: str | None = None
    sleep_ms: int = 0
    fail_times: int = 0
    cleanup_ms: int = 0
    """Mode `track`: a cancelled run awaits a clean-up this long before it re-raises."""
    mode: str = "ok"  # ok | permanent | not_due | crash | retry_after | track | block | gc


class RunRecord(msgspec.Struct, frozen=True):
    job_id: str
    n: int
    attempt: int
    pid: int
    start_ms: int
    end_ms: int
    key: str | None
    deliveries: int


_encoder = msgspec.json.Encoder()


async def work(ctx: JobContext, p: Work) -> Outcome:
    start = int(time.time() * 1000)
    if p.mode == "crash":
        os._exit(1)
    if p.mode == "gc":  # what the worker's process keeps out of the cyclic GC's walks
        await ctx.redis.set(GC_FROZEN_KEY, gc.get_freeze_count())
    if p.mode == "track":
        await _tracked_sleep(ctx, p)
    elif p.mode == "block" and ctx.deliveries == 1:  # stalls its loop on the first delivery
        time.sleep(p.sleep_ms / 1000)  # noqa: ASYNC251 - a handler blocking its event loop (a bug)
    elif p.sleep_ms:
        await anyio.sleep(p.sleep_ms / 1000)
    end = int(time.time() * 1000)
    record = RunRecord(ctx.job_id, p.n, ctx.attempt, os.getpid(), start, end, p.key, ctx.deliveries)
    await ctx.redis.rpush(RUNS_KEY, _encoder.encode(record))
    if p.mode == "permanent":
        raise PermanentError("bad thing", status=404, body='{"code":"bet_not_found"}')
    if p.mode == "not_due" and await ctx.redis.incr(f"test:notdue:{ctx.job_id}") == 1:
        raise NotDue(retry_at_ms=int(time.time() * 1000) + 300)
    if ctx.attempt <= p.fail_times:
        if p.mode == "retry_after":
            raise RetryLater("busy", after_ms=200)
        raise RuntimeError(f"planned failure {ctx.attempt}")
    return Done()


async def _tracked_sleep(ctx: JobContext, p: Work) -> None:
    """Sleep while listed as running in Redis; a second run of the key at once is recorded.

    Seen from Redis, across processes, and for runs that are cancelled too (the run
    leaves the set in `finally`), unlike the run records written at the end. Joining
    is inside the `try`: a run cancelled after sending SADD but before its reply (the
    lease watchdog during a Redis pause; the engine's cancellation is asyncio's, which
    an anyio shield does not hold back) stayed listed for good, and every later run of
    the key was recorded as an overlap. The record names the runs it met.

    With `cleanup_ms`, a cancelled run does what money-moving handlers do, `except
    CancelledError: await compensate(); raise`, and stays listed until that is over.
    """
    active = f"test:active:{p.key or ctx.job_id}"
    run = f"{ctx.job_id}/{ctx.attempt}/{secrets.token_hex(3)}"
    try:
        await ctx.redis.sadd(active, run)
        members = await ctx.redis.smembers(active)
        if others := sorted(m.decode() for m in members if m != run.encode()):
            await ctx.redis.rpush(OVERLAPS_KEY, f"{p.key}:{run}:{os.getpid()} with {others}")
        if p.cleanup_ms:  # the test pauses Redis once it sees the run waiting in its sleep
            await ctx.redis.incr(f"test:sleeping:{p.key or ctx.job_id}")
        try:
            await anyio.sleep(p.sleep_ms / 1000)
        except asyncio.CancelledError:
            if p.cleanup_ms:
                await asyncio.sleep(p.cleanup_ms / 1000)  # the compensation, while cancelled
                await ctx.redis.rpush(CLEANUPS_KEY, f"{run}:{os.getpid()}")
            raise
    finally:
        with anyio.CancelScope(shield=True):
            await ctx.redis.srem(active, run)


WORK = JobType(name="test.work", payload=Work, handler=work, timeout_s=30.0)
UNIQUE = JobType(
    name="test.unique", payload=Work, handler=work, job_id=lambda p: f"test.unique:{p.n}"
)
SLOW = JobType(name="test.slow", payload=Work, handler=work, timeout_s=0.3)
EXCLUSIVE = JobType(
    name="test.exclusive", payload=Work, handler=work, timeout_s=60.0,
    partition_key=lambda p: p.key or "", exclusive=True,
)  # fmt: skip
POISON = JobType(name="test.poison", payload=Work, handler=work, timeout_s=30.0)

TEST_WORK = Processor(name="test.work", job_types=(WORK, SLOW, UNIQUE), concurrency=8)
TEST_EXCLUSIVE = Processor(
    name="test.exclusive", job_types=(EXCLUSIVE,), concurrency=8, partitions=2
)
TEST_POISON = Processor(name="test.poison", job_types=(POISON,), concurrency=4)

TICK = JobType(name="test.tick", payload=Work, handler=work, timeout_s=30.0)
TEST_TICK = Processor(
    name="test.tick",
    job_types=(TICK,),
    concurrency=4,
    schedules=(Schedule(job="test.tick", default="1", env="CRON_TEST_TICK"),),
)

PROCESSORS = (TEST_WORK, TEST_EXCLUSIVE, TEST_POISON, TEST_TICK, NOOP_PROCESSOR)
