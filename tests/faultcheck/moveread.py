"""The `moveread` fault: a repartition that starts while jobs are being read (issue #22 item 1).

Why a kind of its own: the `repartition` fault fires mid-run, when the queue is busy,
so the command's (before the protocol: only) look for deliveries in flight finds some
and waits until none is pending; by then every worker has seen the pause and reads
nothing more. The race of item 1 needs the opposite: nothing running when the command
looks, then a read just after the look, before the workers' next control poll (~0.2 s),
of a run still going when the move comes (1.5 s later: the producers' re-check; later
under load, hence runs of 5-7 s: with 3-4 s the old engine's seed 5 was no longer caught
at load 15, its runs ending before the move). So:

1. wait until nothing of the queue is pending or ready (the waves have run; bounded);
2. start `tgworkers repartition` and, as its mark lands, plain-XADD the fault's jobs
   (5-7 s each) into the partitions of the old count, spread over the first 150 ms: a
   producer whose once-a-second re-check of the record came just before the mark
   (docs/wire-format.md); idle workers' blocked XREADGROUPs take them at once;
3. roll the workers as `repartition` does, the new ones up before the old are SIGTERMed
   (an operator's rolling restart).

Before the protocol (440beec, c292835's parent) the move took the jobs being run; the
old worker's next renewal found its entry gone (`entries_lost`) and cancelled the run,
which then compensates for 8-10 s (a money job's `except CancelledError: await
compensate()`), while a worker with the new count runs the moved copy: the overlap of
one job in two partitions the checker reports. (A run that stops at once on that
cancellation ends before any new worker is up: that is how the `repartition` fault's
short jobs hid the bug.) With the protocol the move waits the running jobs out: nothing
cancels them, and they never compensate, so their clean-up may exceed the job type's
declared budget (app.CLEANUP_S, which 440beec did not have).
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING

import anyio
import msgspec

from tests.faultcheck.schedule import Fault
from tgworkers.engine.wire.keys import GROUP, partition_of

if TYPE_CHECKING:
    from tests.faultcheck.runner import ScheduleRun

QUIET_TIMEOUT_S = 30.0
MARK_TIMEOUT_S = 30.0
SPREAD_S = (0.02, 0.07, 0.15)
"""When, after the mark is seen, each held-back job is added (the first look comes first)."""


async def moveread(run: ScheduleRun, f: Fault) -> None:
    if not await _quiet(run):
        run.skipped.append(f"{f.describe()}: the queue never went quiet; the move ran busy")
    old, new = run.partitions, run.partitions + 1
    added = False
    async with anyio.create_task_group() as tg:

        async def read_at_mark() -> None:
            nonlocal added
            if await _marked(run):
                await _add(run, f, old)
                added = True

        tg.start_soon(read_at_mark)
        moved = await run.repartition(f, new)
        tg.cancel_scope.cancel()
    if not added:  # the command never marked (refused): the jobs still have to run
        run.skipped.append(f"{f.describe()}: no mark seen; its jobs were enqueued afterwards")
        await _add(run, f, await run.settled_count(), spread=False)
    if moved:
        run.partitions = new
        run.max_partitions = max(run.max_partitions, new)
        await run.rolling_restart(wait_new=True)


def held_back(faults: tuple[Fault, ...]) -> set[int]:
    """Jobs the waves leave out: a `moveread` enqueues them itself."""
    return {n for f in faults if f.kind == "moveread" for n in f.jobs}


async def _quiet(run: ScheduleRun) -> bool:
    """Until no entry of the queue is pending and none is ready (True), or the bound."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            busy = 0
            for p in range(run.partitions):
                k = run.pk(p)
                busy += int((await run.redis.xpending(k.ready, GROUP))["pending"])
                busy += await run.redis.xlen(k.ready)
            if not busy:
                return True
        await anyio.sleep(0.05)
    return False


async def _marked(run: ScheduleRun) -> bool:
    deadline = time.monotonic() + MARK_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ">" in await run.record():
                return True
        await anyio.sleep(0.003)
    return False


async def _add(run: ScheduleRun, f: Fault, count: int, *, spread: bool = True) -> None:
    """Plain XADD (and the job's state record, as the Client writes it) by `count` partitions."""
    seen = time.monotonic()
    for i, n in enumerate(f.jobs):
        if spread:
            delay = seen + SPREAD_S[i % len(SPREAD_S)] - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)  # a moment after the mark, not a wait for a state
        p = run.s.payloads[n]
        job_id = run.s.job_id(n)
        fields = {
            "id": job_id, "name": "fc.exclusive", "payload": msgspec.json.encode(p),
            "enqueued_ms": str(int(time.time() * 1000)), "key": p.key, "origin": "faultcheck-moveread",
        }  # fmt: skip
        k = run.pk(partition_of(p.key, count))
        entry = await run.retrying(functools.partial(run.redis.xadd, k.ready, fields))
        await run.retrying(functools.partial(run.redis.hset, k.jobs, job_id, b"r:" + entry))
