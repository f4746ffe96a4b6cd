"""The per-second budget that bounds per-job telemetry under load."""

from __future__ import annotations

import time

from tgworkers.engine.telemetry.recorder import RateBudget


def test_budget_allows_up_to_its_rate_within_one_second():
    budget = RateBudget(3)
    budget._ends = 0.0  # a second long gone: the first call starts a new one
    got = [budget.allow() for _ in range(5)]
    assert got == [True, True, True, False, False]


def test_budget_refills_when_the_second_changes():
    budget = RateBudget(1)
    assert budget.allow()
    assert not budget.allow()
    budget._ends -= 1  # as if a second had passed
    assert budget.allow()


def test_a_spent_budget_says_until_when_it_says_no():
    budget = RateBudget(1)
    assert budget.allow()
    assert budget.closed_until == 0.0  # not spent yet as far as it knows
    assert not budget.allow()
    assert budget.closed_until == budget._ends > time.monotonic()  # callers may skip the call
    budget._ends -= 1  # as if a second had passed
    assert budget.allow()
