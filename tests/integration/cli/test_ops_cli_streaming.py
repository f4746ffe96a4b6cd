"""Backfill and DLQ export stream: bad lines reported, reruns idempotent, memory flat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from tests.support.cli_runner import APP, ROOT, cli, seed_many_dead
from tests.support.engine_state import queue_state

from tgworkers.cli import main as cli_main

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """In-process commands point structlog at capsys's stderr; undo it for later tests."""
    yield
    structlog.reset_defaults()


def _lines(n: int, bad: dict[int, str]) -> bytes:
    out = [bad.get(i, json.dumps({"n": i})) for i in range(1, n + 1)]
    return ("\n".join(out) + "\n").encode()


async def test_backfill_reports_bad_lines_by_number_enqueues_the_rest_and_a_rerun_creates_nothing(
    redis, redis_url, tmp_path
):
    data = tmp_path / "jobs.jsonl"
    data.write_bytes(_lines(50, {7: '{"n": "seven"}', 20: "not json", 33: '{"n": 1.5}'}))
    first = await cli(redis_url, "backfill", "test.unique", "--file", str(data), "--json")
    assert first.rc == 0, first.err
    assert json.loads(first.out.splitlines()[-1]) == {
        "name": "test.unique", "lines": 50, "valid": 47, "created": 47, "existing": 0,
        "bad": 3, "dryRun": False,
    }  # fmt: skip
    reported = [line.split(":")[0] for line in first.err_lines if line.startswith("line ")]
    assert reported == ["line 7", "line 20", "line 33"]
    assert (await queue_state(redis))["ready"] == 47
    again = await cli(redis_url, "backfill", "test.unique", "--file", str(data), "--json")
    summary = json.loads(again.out.splitlines()[-1])
    assert (summary["created"], summary["existing"]) == (0, 47)
    assert (await queue_state(redis))["ready"] == 47


async def test_backfill_reads_stdin_and_dry_run_enqueues_nothing(redis, redis_url):
    dry = await cli(redis_url, "backfill", "test.work", "--dry-run", stdin=_lines(5, {2: "{"}))
    assert dry.rc == 0, dry.err
    assert "would enqueue" in dry.out and "4 valid" in dry.out and "1 bad" in dry.out
    assert await redis.dbsize() == 0
    real = await cli(redis_url, "backfill", "test.work", "-", stdin=_lines(5, {}))
    assert real.rc == 0 and "5 created" in real.out
    assert (await queue_state(redis))["ready"] == 5


async def test_backfill_is_audited_with_its_counts(redis, redis_url):
    done = await cli(redis_url, "backfill", "test.work", "-", stdin=_lines(3, {2: "{"}))
    assert done.rc == 0, done.err
    (entry,) = await redis.xrevrange("{tgw}:audit")
    fields = entry[1]
    assert (fields[b"action"], fields[b"target"], fields[b"via"]) == (
        b"backfill", b"test.work", b"cli",
    )  # fmt: skip
    details = json.loads(fields[b"details"])
    assert (details["created"], details["bad"], details["lines"]) == (2, 1, 3)


async def test_backfill_rate_limits_jobs_per_second(redis, redis_url):
    started = time.monotonic()
    result = await cli(redis_url, "backfill", "test.work", "--rate", "20", stdin=_lines(30, {}))
    assert result.rc == 0, result.err
    assert time.monotonic() - started >= 1.0  # 30 jobs at 20/s cannot finish within 1 s
    assert (await queue_state(redis))["ready"] == 30


def test_backfill_of_many_lines_runs_in_bounded_memory(redis_url, tmp_path, monkeypatch, capsys):
    data = tmp_path / "big.jsonl"
    with data.open("w") as out:
        for i in range(200_000):
            out.write(f'{{"n": {i}, "key": "{"k" * 100}"}}\n')
    monkeypatch.setenv("REDIS_URL", redis_url)
    tracemalloc.start()
    try:
        rc = cli_main(["backfill", "test.work", "--file", str(data), "--dry-run", "--json",
                       "--app", APP])  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["valid"] == 200_000
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB for a {data.stat().st_size / MB:.0f} MB file"


def _export_peak_rss_kb(redis_url: str, queue: str, out: Path) -> int:
    """Run `dlq export` in a child process and return that child's peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url}
    args = [sys.executable, "-m", "tgworkers", "dlq", "export", queue, "--out", str(out),
            "--app", APP]  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_maxrss


async def test_dlq_export_of_100k_entries_streams_in_bounded_memory(redis, redis_url, tmp_path):
    await seed_many_dead(redis, 100_000, pad=300)
    baseline_kb = _export_peak_rss_kb(redis_url, "test.poison", tmp_path / "empty.jsonl")
    out = tmp_path / "dead.jsonl"
    peak_kb = _export_peak_rss_kb(redis_url, "test.work", out)
    size = out.stat().st_size
    with out.open() as f:
        assert sum(1 for _ in f) == 100_000
    assert size > 40 * MB
    growth = (peak_kb - baseline_kb) * 1024
    assert growth < 20 * MB, f"RSS grew {growth / MB:.1f} MB while exporting {size / MB:.0f} MB"
