"""A job type's clean-up budget (`JobType.cleanup_s`): declared, checked, refused clearly.

The lease watchdog cancels a run `cleanup_s` earlier than VT less its margin, so a
process cut off from Redis ends the run's clean-up before its key lock expires
(promise 6). A budget the leases cannot cover stops start-up naming the job type and
the numbers; a declaration that is not a duration is refused where it is written.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tgworkers.engine import Done, JobContext, JobType, Outcome
from tgworkers.engine.options import (
    RuntimeOptions,
    check_cleanup_budgets,
    cleanup_limit_s,
    lease_margin_s,
)
from tgworkers.engine.registry import DEFAULT_CLEANUP_S
from tgworkers.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


class Item(msgspec.Struct, frozen=True):
    key: str


async def handle(ctx: JobContext, p: Item) -> Outcome:
    return Done()


def job_type(cleanup_s: Any = DEFAULT_CLEANUP_S) -> JobType[Item]:
    return JobType(name="t.comp", payload=Item, handler=handle, cleanup_s=cleanup_s)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, True, "1", None])
def test_a_cleanup_that_is_not_a_duration_is_refused_naming_the_job_type(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^job type t\.comp: cleanup_s must be"):
        job_type(bad)


@pytest.mark.parametrize(
    ("vt_ms", "limit_s"), [(500, 0.1333), (2000, 0.9333), (3000, 1.4), (30_000, 14.0)]
)
def test_the_longest_budget_leaves_the_watchdog_one_renewal_interval_and_its_margin(
    vt_ms: int, limit_s: float
) -> None:
    assert cleanup_limit_s(vt_ms) == pytest.approx(limit_s, abs=1e-3)
    options = RuntimeOptions(concurrency=1, visibility_timeout_ms=vt_ms, max_deliveries=3,
                             dedupe_ttl_ms=1000)  # fmt: skip
    left = options.run_budget_s(cleanup_limit_s(vt_ms))
    assert left == pytest.approx(options.lease_interval_s + lease_margin_s(vt_ms))
    assert cleanup_limit_s(vt_ms) < vt_ms / 1000 - lease_margin_s(vt_ms)  # never past the lock


def test_the_default_budget_fits_the_shortest_visibility_timeout() -> None:
    check_cleanup_budgets([job_type()], 500)  # VISIBILITY_TIMEOUT_MS may not go below 500


def test_a_budget_at_the_limit_is_accepted_one_past_it_refused_with_the_numbers() -> None:
    check_cleanup_budgets([job_type(0.93)], 2000)
    with pytest.raises(ConfigError) as caught:
        check_cleanup_budgets([job_type(), job_type(1.5)], 2000)
    message = str(caught.value)
    assert message.startswith("job type t.comp: cleanup_s 1.5 s is too long for "
                              "VISIBILITY_TIMEOUT_MS 2000"), message  # fmt: skip
    assert "leaves the lease watchdog 0.3 s" in message
    assert "declare at most 0.933 s" in message


def test_a_budget_the_leases_cannot_cover_stops_start_up_with_one_line(tmp_path: Path) -> None:
    # the checker's job type declares 0.6 s; at VT 1 s at most 0.467 s fits
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
             "VISIBILITY_TIMEOUT_MS": "1000", "REDIS_URL": "redis://127.0.0.1:1/0"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tgworkers", "run", "--app", "tests.faultcheck.app:PROCESSORS",
         "--processors", "fc.exclusive"],
        cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "fc.exclusive" in x]
    assert line.startswith("tgworkers: job type fc.exclusive: cleanup_s 0.6 s is too long"), line
    assert "VISIBILITY_TIMEOUT_MS 1000" in line
