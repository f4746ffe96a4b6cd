"""Retry policy and the one function that turns a run's result into a decision.

Backoff is exponential with full jitter: attempt n waits a uniform random time in
[0, min(cap, base * 2**(n-1))], so retries of many jobs that failed together
spread out instead of arriving as a herd. A `RetryLater.after_ms` (a peer's
Retry-After) is honoured when it is longer, up to `wait_cap_ms` (WAIT_MAX_MS, by
default the backoff cap): no peer answer or snooze parks a job for longer. Attempts are bounded by
`max_attempts`; the last failure dead-letters the job with its whole history.
"""

from __future__ import annotations

import random
from typing import Final, assert_never

import msgspec

from tgworkers.engine.outcome import (
    DeadLetter,
    DeadReason,
    Disposition,
    Done,
    JobSignal,
    NotDue,
    Outcome,
    PermanentError,
    RetryLater,
    Snooze,
)
from tgworkers.engine.wire.envelope import MESSAGE_LIMIT_CHARS, HistoryEntry, cut


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how far apart a job type's failed attempts are retried."""

    base_ms: int = 1000
    cap_ms: int = 300_000
    max_attempts: int = 10
    wait_cap_ms: int | None = None
    """Longest wait a peer (Retry-After, retryAt) or a snooze may ask for; None: `cap_ms`."""

    def capped(self, decision: Decision, now_ms: int) -> Decision:
        """`decision` with its wait bounded: a peer cannot park a job for years."""
        cap = self.cap_ms if self.wait_cap_ms is None else self.wait_cap_ms
        at, delay = decision.at_ms, decision.delay_ms
        if (at is None or at <= now_ms + cap) and delay <= cap:
            return decision
        return msgspec.structs.replace(
            decision,
            at_ms=None if at is None else min(at, now_ms + cap),
            delay_ms=min(delay, cap),
        )

    def backoff_ms(self, attempt: int, rng: random.Random | None = None) -> int:
        """Full-jitter delay before the attempt after `attempt` (1-based)."""
        ceiling = min(self.cap_ms, self.base_ms * (2 ** min(max(attempt - 1, 0), 40)))
        return int((rng or _rng).uniform(0, ceiling))


_rng: Final = random.Random()  # noqa: S311 - jitter, not cryptography


class HandlerTimeoutError(Exception):
    """The handler ran longer than its job type's timeout."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with one run: a disposition and, when it waits, until when."""

    disposition: Disposition
    at_ms: int | None = None
    delay_ms: int = 0
    record: HistoryEntry | None = None
    reason: str | None = None
    dead_reason: DeadReason | None = None
    """Set with `Disposition.DEAD`: why, for the metric's label."""


DONE: Final = Decision(disposition=Disposition.DONE)
"""The decision for every `Done()` (frozen: one value shared by all runs)."""


def _record(exc: BaseException, attempt: int, now_ms: int, kind: str) -> HistoryEntry:
    if isinstance(exc, JobSignal):
        message, status, body = exc.message, exc.status, exc.body
    else:
        message, status, body = f"{type(exc).__name__}: {exc}", None, None
    return HistoryEntry(
        attempt=attempt,
        at_ms=now_ms,
        kind=kind,
        message=cut(message, MESSAGE_LIMIT_CHARS),
        status=status,
        body=cut(body) if body is not None else None,
    )


def decide_outcome(outcome: Outcome, now_ms: int) -> Decision:
    """The decision for a value a handler returned."""
    match outcome:
        case Done():
            return DONE
        case Snooze(at_ms=at_ms, after_ms=after_ms):
            return Decision(disposition=Disposition.SNOOZE, at_ms=at_ms, delay_ms=after_ms or 0)
        case DeadLetter(reason=reason):
            return Decision(
                disposition=Disposition.DEAD,
                reason=cut(reason, MESSAGE_LIMIT_CHARS),
                dead_reason=DeadReason.HANDLER,
            )
        case _ as unreachable:
            assert_never(unreachable)


def decide_failure(
    exc: BaseException, *, attempt: int, policy: RetryPolicy, now_ms: int
) -> Decision:
    """Classify what a handler raised: permanent, not due, or retry (bounded)."""
    if isinstance(exc, PermanentError):
        record = _record(exc, attempt, now_ms, "permanent")
        return Decision(
            disposition=Disposition.DEAD,
            record=record,
            reason=record.message,
            dead_reason=DeadReason.PERMANENT,
        )
    if isinstance(exc, NotDue):
        delay = 0 if exc.retry_at_ms is not None else policy.backoff_ms(attempt)
        snooze = Decision(disposition=Disposition.SNOOZE, at_ms=exc.retry_at_ms, delay_ms=delay)
        return policy.capped(snooze, now_ms)
    kind = "timeout" if isinstance(exc, HandlerTimeoutError) else "error"
    record = _record(exc, attempt, now_ms, kind)
    if attempt >= policy.max_attempts:
        reason = f"attempts exhausted ({attempt}/{policy.max_attempts}): {record.message}"
        return Decision(
            disposition=Disposition.DEAD,
            record=record,
            reason=cut(reason, MESSAGE_LIMIT_CHARS),
            dead_reason=DeadReason.EXHAUSTED,
        )
    delay = policy.backoff_ms(attempt)
    if isinstance(exc, RetryLater) and exc.after_ms is not None:
        delay = max(delay, exc.after_ms)
    retry = Decision(disposition=Disposition.RETRY, delay_ms=delay, record=record)
    return policy.capped(retry, now_ms)
