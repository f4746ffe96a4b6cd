"""`Executor.begin`: a run that never waits ends at once; one that waits goes on as before.

A no-op job used to go through four nested coroutines; `begin` ends a handler that
never waits (and a lost, handed-back or bad entry) without any. What must not change:
a handler that waits runs under its timeout from its first wait, tells the runtime
it waits (`on_wait`), and every exception becomes a decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.engine.context import Resources
from tgworkers.engine.retry import RetryPolicy
from tgworkers.engine.runtime.deliveries import Deliveries
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.executor import Executor
from tgworkers.engine.runtime.settlement import SettleKind, Settlement
from tgworkers.engine.wire.keys import PartitionKeys

Handler = Callable[[JobContext, Any], Awaitable[Outcome]]


class Item(msgspec.Struct, frozen=True):
    n: int


def _executor(waits: list[bool]) -> Executor:
    ex = Executor(
        queue="q", policy_of=lambda jt: RetryPolicy(), timeout_of=lambda jt: 0.05,
        max_payload_bytes=1024, resources=Resources(), client=None, redis=None,
        scripts=None, consumer="c",
    )  # fmt: skip
    ex.on_wait = waits.append
    return ex


def _delivery(ex: Executor, handler: Handler) -> Delivery:
    jt = JobType(name="t.job", payload=Item, handler=handler)
    fields = {b"id": b"j1", b"name": b"t.job", b"payload": b'{"n":1}', b"attempt": b"1",
              b"enqueued_ms": b"1000"}  # fmt: skip
    d = Delivery(PartitionKeys("tgw", "q", 0), b"1-0", fields, 1, 1.0)
    ex.deliveries = Deliveries("q", {jt.name: jt})
    ex.deliveries.read([d], max_deliveries=3)
    return d


async def test_a_handler_that_never_waits_ends_without_a_coroutine_or_a_timer() -> None:
    async def no_wait(ctx: JobContext, p: Item) -> Outcome:
        return Done()

    waits: list[bool] = []
    ex = _executor(waits)
    d = _delivery(ex, no_wait)
    result = ex.begin(d)
    assert isinstance(result, Settlement)
    assert result.kind is SettleKind.DONE
    assert waits == []
    assert d.timeout is None


async def test_a_handler_that_waits_runs_under_its_timeout_and_says_it_waits() -> None:
    seen: list[bool] = []

    async def waits_then_done(ctx: JobContext, p: Item) -> Outcome:
        await asyncio.sleep(0)
        seen.append(d.timeout is not None)  # under the timeout while it runs
        return Done()

    waits: list[bool] = []
    ex = _executor(waits)
    d = _delivery(ex, waits_then_done)
    result = ex.begin(d)
    assert not isinstance(result, Settlement)
    settlement = await result
    assert settlement.kind is SettleKind.DONE
    assert seen == [True]
    assert waits == [True, False]
    assert d.timeout is None


async def test_a_handler_past_its_timeout_after_a_wait_is_a_failed_attempt() -> None:
    async def too_slow(ctx: JobContext, p: Item) -> Outcome:
        await asyncio.sleep(10)
        return Done()

    ex = _executor([])
    d = _delivery(ex, too_slow)
    settlement = await ex.run(d)
    assert settlement.kind is SettleKind.LATER
    assert settlement.decision is not None and settlement.decision.record is not None
    assert settlement.decision.record.message == (
        "HandlerTimeoutError: handler exceeded its timeout of 0.05 s"
    )


async def test_a_handler_that_raises_before_any_wait_is_a_failed_attempt() -> None:
    async def fails(ctx: JobContext, p: Item) -> Outcome:
        raise RuntimeError("boom")

    ex = _executor([])
    d = _delivery(ex, fails)
    result = ex.begin(d)
    assert isinstance(result, Settlement)
    assert result.kind is SettleKind.LATER
    assert d.error_type == "RuntimeError"
