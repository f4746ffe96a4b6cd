"""Runs ONE delivery as a pipeline of small steps and says how to settle it.

1. `_check`: a malformed entry, an unknown job name, an oversize or invalid
   payload becomes a dead-letter decision naming the problem (promise 7);
2. `_perform`: the handler, and (`_finish`) the rest of one that waits under its
   timeout, every exception captured as data; a run that never waits ends without
   a coroutine of the engine's (`begin`);
3. `decide_*`: the result classified into a `Decision` (retry.py);
4. `settlement.py`: exactly one settle item per decision, sent by the runtime in
   batches.

Nothing here touches Redis except through the handler's context; a delivery's state
changes only through the runtime's table (`Deliveries`: waits, returned, failed, fenced).
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

import msgspec
import structlog

from tgworkers.engine.context import JobContext, Resources, RunShared, StepsWriter
from tgworkers.engine.ops.rates import QueueGate
from tgworkers.engine.outcome import Disposition, Done, Outcome
from tgworkers.engine.retry import (
    DONE,
    Decision,
    HandlerTimeoutError,
    RetryPolicy,
    decide_failure,
    decide_outcome,
)
from tgworkers.engine.runtime import settlement as settle
from tgworkers.engine.runtime.deliveries import Deliveries
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.runtime.settlement import (
    SettleKind,
    Settlement,
    cancelled_decision,
    invalid_record,
    now_ms,
)
from tgworkers.engine.telemetry.recorder import Telemetry, active as active_telemetry
from tgworkers.engine.wire.envelope import Envelope
from tgworkers.engine.wire.scripts import Scripts

if TYPE_CHECKING:
    from tgworkers.engine.registry import JobType

log = structlog.get_logger("tgworkers.job")


def _no_hook(waiting: bool) -> None:  # noqa: FBT001
    """No runtime listening (an executor used on its own)."""


Clock = Callable[[], float]
"""Unix seconds, like `time.time`: what a handler's `ctx.now_ms()` reads."""


@runtime_checkable
class MovedClock(Protocol):
    """A clock set ahead of Redis's on purpose, whose owner moves Redis's data to match.

    `tgworkers.testing`'s `FakeClock`: after `advance(3600)` handlers read an hour later,
    and the harness moved every due time in Redis an hour earlier. An absolute time a
    handler hands back (`Snooze(at_ms=)`, `ctx.enqueue(run_at_ms=)`) is then moved by
    `skew_ms()` too. Any other clock (`time.time`, a host clock that is simply wrong) is
    taken at its word: the engine does not correct a worker whose clock disagrees.
    """

    def __call__(self) -> float: ...

    def skew_ms(self) -> int:
        """How far this clock is ahead of the engine's (Redis's) clock, in ms."""
        ...


T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Await the rest of a coroutine that was stepped once by hand (`coro.send(None)`).

    What `await coro` would have done from its first suspension on: each thing it
    waits on goes up to the task, results and exceptions (a timeout's cancellation
    included) come back down into it. Stepping by hand first lets a handler that
    finishes without waiting skip the timeout's timer (a third of the per-job cost
    of a no-op job, profiled); one that waits runs under the timeout as before.
    """
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the handler, as `await` does
            try:
                pending = coro.throw(exc)
            except StopIteration as finished:
                return cast(T, finished.value)
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as finished:
                return cast(T, finished.value)


class Executor:
    """Turns deliveries of one processor into settlements."""

    def __init__(  # noqa: PLR0913 - wiring, built once per processor
        self,
        *,
        queue: str,
        policy_of: Any,
        timeout_of: Any,
        max_payload_bytes: int,
        resources: Resources,
        client: Any,
        redis: Any,
        scripts: Scripts,
        consumer: str,
        clock: Clock = time.time,
    ) -> None:
        self.queue = queue
        self.policy_of = policy_of  # (JobType) -> RetryPolicy, read per run (hot reload)
        self.timeout_of = timeout_of  # (JobType) -> float
        self.max_payload_bytes = max_payload_bytes
        self.resources = resources
        self.client = client
        self.redis = redis
        self.scripts = scripts
        self.consumer = consumer
        self.clock = clock
        """The handlers' clock (`ctx.now_ms()`); a test's `FakeClock` under `tgworkers.testing`."""
        self._moved = isinstance(clock, MovedClock)
        self._shared = RunShared(
            queue=queue, resources=resources, client=client, redis=redis, clock=clock,
            to_engine_ms=self._engine_ms if self._moved else None,
            steps_writer_of=self._steps_writer,
        )  # fmt: skip
        """What every run's context shares (`JobContext.of_run`)."""
        self.telemetry: Telemetry = active_telemetry()
        self.on_wait: Callable[[bool], None] = _no_hook
        """Told when a handler starts (True) and stops (False) waiting: the runtime
        wakes another consumer only then (runtime._take)."""
        self.rate: QueueGate | None = None
        """The queue's shared rate limit (rates.py), awaited before a run: None, none set."""
        self.cancelled: dict[bytes, str] = {}
        """Entry id -> who cancelled its run (job_actions.py): dead-lettered, not retried."""
        self.deliveries = Deliveries(queue)
        """The runtime's delivery table, whose transitions a run goes through (the
        runtime hands its own; this one serves an executor used on its own)."""

    async def run(self, d: Delivery) -> Settlement:
        """How `d` ends: its run, or why it does not run (`begin`, awaited whole)."""
        result = self.begin(d)
        return result if isinstance(result, Settlement) else await result

    def begin(self, d: Delivery) -> Settlement | Coroutine[Any, Any, Settlement]:
        """How `d` ends, when its run needs no wait; else a coroutine that ends it.

        Most runs (a handler that never waits; a lost, handed-back or bad entry) end
        here, with no coroutine of the engine's around the handler: the coroutine
        layers a no-op job went through were ~10 % of its CPU (profiled). A run that
        waits (its handler, a deadline's or rate limit's check) goes on in the coroutine.
        """
        if d.lost:  # taken over while it waited here: it never runs (promise 3)
            return Settlement(SettleKind.DROP, d)
        if d.handback:
            return settle.hand_back(d)
        problem, payload = self._check(d)
        if problem is not None:  # a failed attempt too: counted, and in the job's history
            return settle.dead(d, problem, failed=True, record=invalid_record(d, problem))
        env = d.envelope
        assert env is not None  # noqa: S101
        limited = self.rate is not None and self.rate.per_s() is not None
        if env.expires_ms is not None or self.cancelled or limited:
            return self._run_checked(d, env, payload)
        return self._start(d, env, payload)

    async def _run_checked(self, d: Delivery, env: Envelope, payload: Any) -> Settlement:
        """A run held back first by its deadline, the queue's rate limit or a cancel."""
        held = await self._before(d, env)
        if held is not None:
            return held
        result = self._start(d, env, payload)
        return result if isinstance(result, Settlement) else await result

    def _start(
        self, d: Delivery, env: Envelope, payload: Any
    ) -> Settlement | Coroutine[Any, Any, Settlement]:
        """The run, in telemetry's span and log context: ended here unless its handler waits."""
        started = time.perf_counter()
        run = self.telemetry.start_process(self.queue, d)  # span and log context
        decision: Decision | None = None
        waits = False
        try:
            begun = self._perform(d, env, payload)
            if run.pickup_s is not None:  # sampled: recorded after the first step, not before
                self.telemetry.picked_up(run)
            if not isinstance(begun, Decision):  # the handler waits: `_waited` ends the run
                waits = True
                return self._waited(d, env, begun, run, started)
            decision = begun
        finally:
            if not waits:
                self._ended(run, d, decision)
        return self._settlement(d, env, decision, started)

    async def _waited(
        self, d: Delivery, env: Envelope, rest: Awaitable[Outcome], run: Any, started: float
    ) -> Settlement:
        decision: Decision | None = None
        try:
            assert d.job_type is not None  # noqa: S101
            decision = await self._finish(d, env, d.job_type, rest)
        finally:
            self._ended(run, d, decision)
        return self._settlement(d, env, decision, started)

    def _ended(self, run: Any, d: Delivery, decision: Decision | None) -> None:
        self.telemetry.end_process(run, d, decision)
        if self.cancelled:
            self.cancelled.pop(d.entry_id, None)  # a run that ended before it noticed

    def _settlement(
        self, d: Delivery, env: Envelope, decision: Decision, started: float
    ) -> Settlement:
        if d.lost or d.handback:  # lease lost (drop, fenced) or shutdown (hand back)
            return settle.ended_early(d)
        settlement = settle.settlement(d, env, decision, self._engine_ms)
        settlement.duration_s = time.perf_counter() - started
        return settlement

    async def _before(self, d: Delivery, env: Envelope) -> Settlement | None:
        """A deadline passed, the queue's rate limit, or a cancel that came before the run."""
        if env.expires_ms is not None and now_ms() >= env.expires_ms:
            return settle.expired(d, env)
        if self.rate is not None and self.rate.per_s() is not None:
            held = await self._admit(d, env)
            if held is not None:
                return held
        if d.entry_id in self.cancelled:  # before it started, or while it waited for a permit
            return self._cancelled(d, env)
        return None

    async def _admit(self, d: Delivery, env: Envelope) -> Settlement | None:
        """Wait for the queue's rate permit; refused, the job waits delayed, attempt unspent."""
        assert self.rate is not None  # noqa: S101
        self.on_wait(True)  # noqa: FBT003 - another consumer may take a job meanwhile
        try:
            wait_ms = await self.rate.admit()
        finally:
            self.on_wait(False)  # noqa: FBT003
        if d.interrupted():
            return settle.ended_early(d)
        if wait_ms is None:
            return None
        snooze = Decision(disposition=Disposition.SNOOZE, delay_ms=max(wait_ms, 1))
        return settle.settlement(d, env, snooze, self._engine_ms)

    def cancel_job(self, deliveries: Iterable[Delivery], job_id: str, by: str) -> bool:
        """Interrupt this worker's run of `job_id` (an operator's cancel); False: not ours."""
        for d in deliveries:
            if d.job_id == job_id and not d.settling and not d.interrupted():
                self.cancelled[d.entry_id] = by
                self.deliveries.interrupt(d)  # its timeout fires now; `_perform` reads who
                return True
        return False

    def _cancelled(self, d: Delivery, env: Envelope) -> Settlement:
        by = self.cancelled.pop(d.entry_id)
        return settle.settlement(d, env, cancelled_decision(env, by), self._engine_ms)

    def _check(self, d: Delivery) -> tuple[str | None, Any]:
        """The problem that makes `d` no job to run, or None and its decoded payload."""
        if d.problem is not None:
            return d.problem, None
        env = d.envelope
        assert env is not None  # noqa: S101
        if d.job_type is None:
            return f"unknown job name {env.name!r} for queue {self.queue!r}", None
        if len(env.payload) > self.max_payload_bytes:
            size, limit = len(env.payload), self.max_payload_bytes
            return f"payload is {size} bytes, over MAX_PAYLOAD_BYTES ({limit})", None
        try:
            payload = d.job_type.decoder.decode(env.payload)
            if d.job_type.validate is not None:
                d.job_type.validate(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            return f"invalid payload for {env.name}: {exc}", None
        return None, payload

    def _perform(self, d: Delivery, env: Envelope, payload: Any) -> Decision | Awaitable[Outcome]:
        """The handler, run by hand up to its first wait: its decision, or the rest to await.

        Most handlers never wait: they end here with no coroutine of the engine's
        around them and no timer (`_finish` awaits the rest of one that waits, under its
        timeout). Every exception is captured as data.
        """
        jt = d.job_type
        assert jt is not None  # noqa: S101
        ctx = JobContext.of_run(self._shared, env, d.pk, d.deliveries, d)
        try:  # X-Request-Id is the run's (telemetry's current run, set by start_process)
            run = jt.handler(ctx, payload)
            if type(run) is not types.CoroutineType and not isinstance(run, Coroutine):
                return run  # an awaitable of another kind: all of it under the timeout
            try:
                pending = run.send(None)
            except StopIteration as finished:
                outcome = cast(Outcome, finished.value)  # no wait: no timer to arm or cancel
            else:
                return resume(run, pending)
        except TimeoutError as exc:
            return self._timed_out(d, env, jt, exc)
        except Exception as exc:  # noqa: BLE001 - every failure becomes data, then a decision
            return self._failed(d, env, exc)
        return DONE if type(outcome) is Done else self._decided(outcome, jt)

    async def _finish(
        self, d: Delivery, env: Envelope, jt: JobType[Any], rest: Awaitable[Outcome]
    ) -> Decision:
        """The rest of a handler that waits, under its timeout, and its decision."""
        try:
            outcome = await self._call(d, rest, jt)
        except TimeoutError as exc:
            return self._timed_out(d, env, jt, exc)
        except Exception as exc:  # noqa: BLE001 - every failure becomes data, then a decision
            return self._failed(d, env, exc)
        finally:
            if d.timeout is not None:
                self.deliveries.returned(d)
        return self._decided(outcome, jt)

    def _decided(self, outcome: Outcome, jt: JobType[Any]) -> Decision:
        if type(outcome) is Done:
            return DONE  # most runs: no clock read, no new decision
        decision = decide_outcome(outcome, self._now_ms())
        if decision.disposition is Disposition.SNOOZE:
            decision = self.policy_of(jt).capped(decision, self._now_ms())
        return decision

    def _timed_out(
        self, d: Delivery, env: Envelope, jt: JobType[Any], exc: TimeoutError
    ) -> Decision:
        """A run that ended in TimeoutError: an operator's cancel, its timeout, or its own."""
        if self.cancelled and (by := self.cancelled.pop(d.entry_id, None)) is not None:
            return cancelled_decision(env, by)
        error: BaseException = exc  # the handler's own TimeoutError, unless ours fired
        if d.timeout is not None and d.timeout.expired() and not d.interrupted():
            timeout_s = self.timeout_of(jt)
            error = HandlerTimeoutError(f"handler exceeded its timeout of {timeout_s:g} s")
        return self._failed(d, env, error)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _engine_ms(self, handler_ms: int) -> int:
        """An absolute time from the handlers' clock on the engine's (the same in production)."""
        if isinstance(self.clock, MovedClock):
            return handler_ms - self.clock.skew_ms()
        return handler_ms

    async def _call(self, d: Delivery, run: Awaitable[Outcome], jt: JobType[Any]) -> Outcome:
        """The rest of a handler that waits, under its timeout (`_perform` ran it so far).

        asyncio's timeout, not an anyio cancel scope: a quarter of the cost per job
        (profiled), and `Delivery.cancel()` can still interrupt it at once. The
        timeout (read per run: hot reload) is looked up only for a handler that waits.
        """
        self.on_wait(True)  # noqa: FBT003
        try:
            async with asyncio.timeout(self.timeout_of(jt)) as timeout:
                self.deliveries.waits(d, timeout)
                return await run
        finally:
            self.on_wait(False)  # noqa: FBT003

    def _steps_writer(self, d: Delivery) -> StepsWriter:
        """Step records of this run, written only while it holds its delivery."""

        async def write(job_id: str, steps_json: bytes) -> bool:
            ok = await self.scripts.record_steps(
                d.pk, self.consumer, d.entry_id, d.token, job_id, steps_json
            )
            if not ok:
                self.deliveries.fenced(d)  # its settle would be refused too: end it as lost
            return ok

        return write

    def _failed(self, d: Delivery, env: Envelope, exc: BaseException) -> Decision:
        self.deliveries.failed(d, exc)  # telemetry's error.type
        policy: RetryPolicy = self.policy_of(d.job_type)  # only failures need the policy
        return decide_failure(exc, attempt=env.attempt, policy=policy, now_ms=self._now_ms())
