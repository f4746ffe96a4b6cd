"""The worker app of the fault-schedule checker: one exclusive job type that keeps a history.

`python -m tgworkers run --app tests.faultcheck.app:PROCESSORS --processors fc.exclusive`.
Unlike `tests.support.jobs` (whose runs are logged to the Redis under test, which
the faults pause, fill and restart), every run here writes its start and end to a
file of its process (tests/faultcheck/history.py). The payload picks what a run does:

- sleep `sleep_ms` (the work, inside the key's exclusive section);
- `cleanup_ms`: when cancelled, await a clean-up that long, then re-raise (within the
  job type's declared budget, `CLEANUP_S`: the watchdog cancels a run that much
  earlier, so a process cut off from Redis ends its clean-up before its lock expires);
- `block_ms`: on its first delivery, block the event loop that long (a bug in a
  handler: the whole process stalls, renewals included);
- `not_due_ms`: "not due" until `enqueued_ms + not_due_ms` by this worker's clock.

`TGW_FAULTCHECK_CLOCK_BEHIND_S` sets this process's wall clock (`time.time`) that
far behind Redis's, as tests/integration/jobs/test_jobs_faults.py does to one job
module; here the whole worker sees the skew (`time.monotonic` is left alone).
"""

from __future__ import annotations

import asyncio
import os
import time

import msgspec

from tests.faultcheck.history import Line, recorder
from tgworkers.engine import Done, JobContext, JobType, NotDue, Outcome, Processor

CLOCK_BEHIND_ENV = "TGW_FAULTCHECK_CLOCK_BEHIND_S"


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    key: str
    sleep_ms: int = 0
    cleanup_ms: int = 0
    block_ms: int = 0
    not_due_ms: int = 0


async def checked(ctx: JobContext, p: Checked) -> Outcome:
    rec = recorder()
    run = rec.new_run() if rec else ""
    if rec:
        rec.write(Line(e="s", run=run, t=time.monotonic(), job=ctx.job_id, n=p.n, key=p.key,
                       att=ctx.attempt, dlv=ctx.deliveries, part=ctx.partition.partition))  # fmt: skip
    how = "error"
    try:
        if p.block_ms and ctx.deliveries == 1:
            if rec:
                rec.mark("b0", run)
            time.sleep(p.block_ms / 1000)  # noqa: ASYNC251 - the fault: a handler blocking its loop
            if rec:
                rec.mark("b1", run)
        if p.not_due_ms and time.time() * 1000 < ctx.enqueued_ms + p.not_due_ms:
            how = "notdue"
            raise NotDue(retry_at_ms=ctx.enqueued_ms + p.not_due_ms)
        await asyncio.sleep(p.sleep_ms / 1000)
        how = "ok"
        return Done()
    except asyncio.CancelledError:
        how = "cancelled"
        if rec:
            rec.mark("c", run)
        if p.cleanup_ms:
            await asyncio.sleep(p.cleanup_ms / 1000)
        raise
    finally:
        if rec:
            rec.write(Line(e="x", run=run, t=time.monotonic(), how=how))


def _skew_clock() -> None:
    behind = float(os.environ.get(CLOCK_BEHIND_ENV) or 0)
    if behind:
        real = time.time
        time.time = lambda: real() - behind


_skew_clock()

CLEANUP_S = 0.6
"""The clean-up budget of the checked job type; the schedules' clean-ups take 0.15-0.45 s.
At the checker's VT of 2 s the watchdog then cancels a run 1.2 s after its last renewal."""

CHECKED = JobType(
    name="fc.exclusive", payload=Checked, handler=checked, timeout_s=60.0,
    partition_key=lambda p: p.key, exclusive=True, cleanup_s=CLEANUP_S,
)  # fmt: skip
FC_EXCLUSIVE = Processor(name="fc.exclusive", job_types=(CHECKED,), concurrency=8, partitions=2)
PROCESSORS = (FC_EXCLUSIVE,)
