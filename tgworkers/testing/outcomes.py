"""`JobRun`: what one run of a job did, recorded by a transparent handler wrapper.

The harness wraps every handler of the app it runs so `drain` can say what ran
and how each run ended. The wrapper returns what the handler returned and raises
what it raised; the engine settles the job exactly as it would unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from tgworkers.engine.context import JobContext
from tgworkers.engine.outcome import Outcome
from tgworkers.engine.registry import JobType, Registry


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run: the job, its attempt, and `outcome` (a returned value's type, or `raised`)."""

    id: str
    name: str
    queue: str
    attempt: int
    outcome: str
    """`Done`, `Snooze`, `DeadLetter`, or `raised` (then `error` says what)."""
    error: str | None = None
    payload: Any = None


def _wrap(jt: JobType[Any], record: Callable[[JobRun], None]) -> JobType[Any]:
    handler = jt.handler

    async def recorded(ctx: JobContext, payload: Any) -> Outcome:
        base = {
            "id": ctx.job_id,
            "name": ctx.name,
            "queue": ctx.queue,
            "attempt": ctx.attempt,
            "payload": msgspec.to_builtins(payload),
        }
        try:
            outcome = await handler(ctx, payload)
        except BaseException as exc:
            record(JobRun(**base, outcome="raised", error=f"{type(exc).__name__}: {exc}"))
            raise
        record(JobRun(**base, outcome=type(outcome).__name__))
        return outcome

    return jt.with_handler(recorded)


def recording_registry(registry: Registry, record: Callable[[JobRun], None]) -> Registry:
    """The same processors with every handler wrapped to `record` its runs."""
    return Registry(
        msgspec.structs.replace(p, job_types=tuple(_wrap(jt, record) for jt in p.job_types))
        for p in registry.processors.values()
    )
