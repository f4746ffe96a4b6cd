from __future__ import annotations

import random

import msgspec
import pytest

from tgworkers.engine.outcome import (
    DeadLetter,
    Disposition,
    Done,
    NotDue,
    PermanentError,
    RetryLater,
    Snooze,
)
from tgworkers.engine.retry import HandlerTimeoutError, RetryPolicy, decide_failure, decide_outcome

POLICY = RetryPolicy(base_ms=1000, cap_ms=300_000, max_attempts=5)


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 20, 60])
def test_backoff_is_full_jitter_under_the_exponential_ceiling(attempt):
    rng = random.Random(attempt)
    ceiling = min(300_000, 1000 * 2 ** (attempt - 1))
    samples = [POLICY.backoff_ms(attempt, rng) for _ in range(500)]
    assert all(0 <= s <= ceiling for s in samples)
    assert max(samples) > ceiling * 0.8  # spread over the whole range, not clustered
    assert min(samples) < ceiling * 0.2


def test_permanent_error_is_dead_at_once_with_status_and_body():
    d = decide_failure(
        PermanentError("nope", status=404, body="x" * 5000), attempt=1, policy=POLICY, now_ms=7
    )
    assert d.disposition is Disposition.DEAD
    assert d.record is not None and d.record.status == 404
    assert len(d.record.body.encode()) == 2048


def test_not_due_snoozes_at_retry_at_without_a_record():
    d = decide_failure(NotDue(retry_at_ms=123), attempt=3, policy=POLICY, now_ms=0)
    assert (d.disposition, d.at_ms, d.record) == (Disposition.SNOOZE, 123, None)


def test_failure_retries_until_the_last_attempt_then_dead_letters():
    assert (
        decide_failure(RuntimeError("x"), attempt=4, policy=POLICY, now_ms=0).disposition
        is Disposition.RETRY
    )
    last = decide_failure(RuntimeError("x"), attempt=5, policy=POLICY, now_ms=0)
    assert last.disposition is Disposition.DEAD
    assert last.reason == "attempts exhausted (5/5): RuntimeError: x"


def test_retry_after_wins_when_longer_than_backoff():
    d = decide_failure(RetryLater("busy", after_ms=250_000), attempt=1, policy=POLICY, now_ms=0)
    assert d.delay_ms == 250_000


def test_retry_after_and_retry_at_are_capped_so_a_peer_cannot_park_a_job_for_years():
    year_ms = 365 * 86_400_000
    d = decide_failure(RetryLater("busy", after_ms=year_ms), attempt=1, policy=POLICY, now_ms=0)
    assert d.delay_ms == POLICY.cap_ms  # WAIT_MAX_MS defaults to BACKOFF_MAX_MS
    now = 1_000_000
    snooze = decide_failure(NotDue("later", retry_at_ms=now + year_ms), attempt=1,
                            policy=POLICY, now_ms=now)  # fmt: skip
    assert snooze.at_ms == now + POLICY.cap_ms
    own_cap = msgspec.structs.replace(POLICY, wait_cap_ms=60_000)
    d = decide_failure(RetryLater("busy", after_ms=year_ms), attempt=1, policy=own_cap, now_ms=0)
    assert d.delay_ms == 60_000
    near = decide_failure(NotDue("soon", retry_at_ms=now + 5), attempt=1, policy=POLICY, now_ms=now)
    assert near.at_ms == now + 5  # a wait under the cap is kept exactly


def test_timeout_is_recorded_as_timeout():
    d = decide_failure(HandlerTimeoutError("slow"), attempt=1, policy=POLICY, now_ms=0)
    assert d.record is not None and d.record.kind == "timeout"


@pytest.mark.parametrize(
    ("outcome", "disposition"),
    [
        (Done(), Disposition.DONE),
        (Snooze(after_ms=5), Disposition.SNOOZE),
        (DeadLetter("why"), Disposition.DEAD),
    ],
)
def test_returned_outcomes_map_to_dispositions(outcome, disposition):
    assert decide_outcome(outcome, 0).disposition is disposition
