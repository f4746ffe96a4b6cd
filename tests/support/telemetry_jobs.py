"""A job type that calls a peer and fails its first attempt (the trace test's subject)."""

from __future__ import annotations

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome, Processor
from tgworkers.peers import Peers


class CallPeer(msgspec.Struct, frozen=True, kw_only=True):
    fail_first: bool = True


async def call_peer(ctx: JobContext, payload: CallPeer) -> Outcome:
    await ctx.resources(Peers).payhub.ledger_invariants()
    if payload.fail_first and ctx.attempt == 1:
        raise RuntimeError("first attempt fails after its peer call")
    return Done()


CALL_PEER = JobType(name="telemetry.call_peer", payload=CallPeer, handler=call_peer, timeout_s=10)
TELEMETRY_CALL = Processor(name="telemetry.call_peer", job_types=(CALL_PEER,), concurrency=2)
PROCESSORS = (TELEMETRY_CALL,)
