"""Built-in job types of the engine itself: `tgworkers.noop` for tests and the bench."""

from __future__ import annotations

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome, Processor


class Noop(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload: `{}`, or `{"n": 7}` to tell jobs apart."""

    n: int = 0


async def do_nothing(ctx: JobContext, payload: Noop) -> Outcome:
    return Done()


NOOP = JobType(name="tgworkers.noop", payload=Noop, handler=do_nothing, timeout_s=5.0)

NOOP_PROCESSOR = Processor(
    name="tgworkers.noop",
    job_types=(NOOP,),
    enabled_by="ENABLE_NOOP",
    enabled_default=False,
    concurrency=100,
)
