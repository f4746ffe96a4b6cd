"""`perform`: run one handler inline, as the worker would, and return what happened.

The handler gets a real `JobContext`: the payload validated and decoded exactly
as production does it (the enqueue-side check, then the worker's decode), the
job type's timeout, `X-Request-Id` set to `job id:attempt`, a fake clock
(`ctx.now_ms()`), steps kept in memory, `ctx.enqueue` recorded (validated like a
live enqueue), and peers answering from the fakes in-process, or from the httpx
transport the test passes. What it raised or returned is turned into the
engine's decision by the engine's own `retry.decide_*` functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from tgworkers.config import Settings, load_settings
from tgworkers.engine.client import encode_payload
from tgworkers.engine.context import JobContext, Resources, Steps, request_id_var
from tgworkers.engine.layout import Layout
from tgworkers.engine.outcome import Disposition, Outcome
from tgworkers.engine.registry import JobType, Registry
from tgworkers.engine.retry import Decision, HandlerTimeoutError, decide_failure, decide_outcome
from tgworkers.jobs.settings import JobSettings
from tgworkers.peers import Peers
from tgworkers.testing.apps import AppSource, load_app
from tgworkers.testing.assertions import match_enqueued, match_none_enqueued
from tgworkers.testing.clock import FakeClock
from tgworkers.testing.peers import FakePeerService
from tgworkers.testing.recording import EnqueuedJob, RecordingClient


class NoRedis(Redis):
    """Stands in for `ctx.redis` when the test gave none: any use says what to do."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise RuntimeError("this handler uses ctx.redis: pass redis= to perform()")


class MemorySteps(Steps):
    """`ctx.steps` kept in memory: `perform(..., steps_done={"debit"})` resumes a job."""

    def __init__(self, done: Iterable[str]) -> None:
        self._done = set(done)

    async def is_done(self, step: str) -> bool:
        return step in (self._done or set())

    async def mark_done(self, step: str) -> None:
        self._done = (self._done or set()) | {step}

    @property
    def done(self) -> set[str]:
        return set(self._done or ())


@dataclass
class Performed:
    """The result of `perform`: the handler's outcome or error and the engine's decision."""

    job_id: str
    decision: Decision
    outcome: Outcome | None
    error: BaseException | None
    enqueued: list[EnqueuedJob]
    steps_done: set[str]
    peers: FakePeerService | None = None
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def disposition(self) -> Disposition:
        return self.decision.disposition

    @property
    def reason(self) -> str | None:
        return self.decision.reason

    def assert_enqueued(
        self, name: str, *, payload: Any = None, at: Any = None, within_ms: int = 1000
    ) -> EnqueuedJob:
        return match_enqueued(self.enqueued, name, payload=payload, at=at, within_ms=within_ms)

    def assert_not_enqueued(self, name: str | None = None, *, payload: Any = None) -> None:
        match_none_enqueued(self.enqueued, name, payload=payload)


def _settings(context: Mapping[str, Any]) -> Settings:
    return load_settings(dict(context.get("env") or {}), None)


async def _run(jt: JobType[Any], ctx: JobContext, payload: Any) -> Outcome | BaseException:
    deadline = asyncio.timeout(jt.timeout_s)
    token = request_id_var.set(f"{ctx.job_id}:{ctx.attempt}")
    try:
        async with deadline:
            return await jt.handler(ctx, payload)
    except TimeoutError as exc:
        if deadline.expired():
            return HandlerTimeoutError(f"handler exceeded its timeout of {jt.timeout_s:g} s")
        return exc
    except Exception as exc:  # noqa: BLE001 - captured as data, as the executor does
        return exc
    finally:
        request_id_var.reset(token)


CONTEXT_KEYS = frozenset(
    {"attempt", "job_id", "steps_done", "clock", "redis", "env", "origin", "history", "resources"}
)
"""What `perform(**context)` accepts; anything else is refused, naming it (a typo fails)."""


@dataclass(frozen=True)
class _Run:
    """What one `perform` builds around the handler."""

    ctx: JobContext
    client: RecordingClient
    steps: MemorySteps
    settings: Settings
    clock: FakeClock


def _build(
    registry: Registry,
    jt: JobType[Any],
    value: Any,
    peer_clients: Callable[[Settings], Any],
    context: dict[str, Any],
) -> _Run:
    proc = registry.processor_of[jt.name]
    settings = _settings(context)
    clock: FakeClock = context.get("clock") or FakeClock()
    redis: Redis = context.get("redis") or NoRedis()
    client = RecordingClient(redis, registry, settings, clock)
    steps = MemorySteps(context.get("steps_done", ()))
    resources = Resources(
        JobSettings.from_settings(settings), client, *context.get("resources", ())
    )
    resources.add(peer_clients(settings))
    job_id = context.get("job_id") or (jt.job_id(value) if jt.job_id else f"{jt.name}:performed")
    key = jt.partition_key(value) if jt.partition_key else job_id
    ctx = JobContext(
        job_id=job_id,
        name=jt.name,
        attempt=context.get("attempt", 1),
        queue=proc.queue,
        partition=Layout(settings).partition_for(proc, key),
        enqueued_ms=clock.now_ms(),
        origin=context.get("origin"),
        history=tuple(context.get("history", ())),
        resources=resources,
        client=client,
        redis=redis,
        steps=steps,
        clock=clock,
    )
    return _Run(ctx, client, steps, settings, clock)


async def perform(
    job: str | JobType[Any],
    payload: Any,
    *,
    app: AppSource = None,
    peers: FakePeerService | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **context: Any,
) -> Performed:
    """Run `job`'s handler once on `payload` and return the `Performed` result.

    Args:
        job: a job type's name (looked up in `app`) or the `JobType` itself.
        payload: a mapping, JSON text or the payload Struct; a bad one raises
            `InputError`, as enqueueing it would.
        app: the processors (`Registry`, a sequence of `Processor`, `"module:ATTR"`);
            default: the jobs installed with tgworkers (plus `job` when a JobType).
        peers: the fake peers to answer peer calls (default: fresh ones).
        transport: an httpx transport for peer calls instead of the fakes.
        **context: `attempt`, `job_id`, `steps_done`, `clock` (a `FakeClock`),
            `redis`, `env` (settings variables), `origin`, `history`, `resources`.

    Raises:
        InputError: the payload is refused, as `enqueue` refuses it.
        TypeError: an unknown `context` keyword.
    """
    if unknown := sorted(set(context) - CONTEXT_KEYS):
        raise TypeError(f"perform(): unknown context {unknown}; known: {sorted(CONTEXT_KEYS)}")
    registry = load_app(app, extra=job if isinstance(job, JobType) else None)
    jt = registry.job_type(job if isinstance(job, str) else job.name)
    fakes = peers if peers is not None or transport is not None else FakePeerService()
    if fakes is not None:
        context["env"] = {**fakes.env(in_process=True), **(context.get("env") or {})}
        if "clock" in context:  # a bet's tEnd, an escrow's expiry: on the test's clock
            fakes.state.clock = context["clock"]
    raw, _ = encode_payload(jt, payload, max_bytes=_settings(context).max_payload_bytes)
    value = jt.decoder.decode(raw)  # the worker decodes the JSON it stored, never the object

    def peer_clients(settings: Settings) -> Peers:
        return (fakes or FakePeerService()).peers(transport, settings=settings)

    run = _build(registry, jt, value, peer_clients, context)
    try:
        result = await _run(jt, run.ctx, value)
    finally:
        await run.ctx.resources(Peers).aclose()
        if isinstance(run.ctx.redis, NoRedis):
            await run.ctx.redis.aclose()
    policy = jt.retry or run.settings.retry_policy(registry.processor_of[jt.name].env_name)
    now_ms = run.clock.now_ms()
    if isinstance(result, BaseException):
        decision = decide_failure(result, attempt=run.ctx.attempt, policy=policy, now_ms=now_ms)
        outcome, error = None, result
    else:
        decision, outcome, error = decide_outcome(result, now_ms), result, None
    return Performed(
        run.ctx.job_id,
        decision,
        outcome,
        error,
        run.client.recorded,
        run.steps.done,
        fakes,
        run.clock,
    )
