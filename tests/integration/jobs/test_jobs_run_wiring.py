"""`run` with the platform's processors: peers built from the environment, or a clear refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.platform_jobs import now_ms, peers_env
from tests.support.processes import ROOT, WorkerProcess
from tests.support.wait import wait_until_sync


def run_once(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "tgworkers", "run", *args],
        cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        ("cfb.price.sample", "SVC_PRICE_URL",
         "SVC_PRICE_URL: not set; processor cfb.price.sample requires it"),
        ("escrow", "SVC_ESCROW_URL", "SVC_ESCROW_URL: not set; processor escrow requires it"),
        ("campaigns.claim", "SERVICE_JWT_PRIVATE_JWK",
         "SERVICE_JWT_PRIVATE_JWK: not set; processor campaigns requires it"),
    ],
)  # fmt: skip
def test_a_chosen_processor_without_its_peer_stops_start_up_naming_the_variable(
    case, fake, jwk_text, redis_url, tmp_path
):
    processors, unset, line = case
    env = {**peers_env(fake, jwk_text), "REDIS_URL": redis_url}
    env.pop(unset)
    done = run_once(["--processors", processors], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"tgworkers: {line}"]


def test_unknown_processor_name_lists_the_valid_ones(redis_url, tmp_path):
    done = run_once(["--processors", "escrow,nope"], {"REDIS_URL": redis_url}, tmp_path)
    assert done.returncode == 2
    assert "unknown processor 'nope'" in done.stderr
    assert "escrow.adjudicate" in done.stderr and "dlq.replay" in done.stderr


def test_run_with_named_processors_warns_about_no_other_processor(redis_url):
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": "info"}  # no peer is configured at all
    worker = WorkerProcess(["run", "--processors", "dlq.replay,tgworkers.noop"], env)
    try:
        wait_until_sync(lambda: "worker.started" in worker.log(), timeout_s=20, what="started")
        log = worker.log()
    finally:
        worker.close()
    assert "processor.skipped" not in log
    assert [line for line in log.splitlines() if '"warning"' in line] == []


def test_default_run_skips_the_price_sampler_without_its_url_and_runs_jobs(
    fake, jwk_text, redis_url
):
    env = {**peers_env(fake, jwk_text), "REDIS_URL": redis_url, "LOG_LEVEL": "info"}
    env.pop("SVC_PRICE_URL")
    fake.state.add_bet("b_1", t_end_ms=now_ms() - 1000)
    worker = WorkerProcess(["run"], env)
    try:
        wait_until_sync(lambda: "worker.started" in worker.log(), timeout_s=20, what="started")
        log = worker.log()
        assert "processor.skipped" in log and "SVC_PRICE_URL" in log
        done = subprocess.run(
            [sys.executable, "-m", "tgworkers", "enqueue", "cfb.settle", '{"betId": "b_1"}'],
            cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_until_sync(lambda: fake.state.get("bets", "b_1")["status"] == "settled",
                        timeout_s=10, what="bet settled by the default run")  # fmt: skip
    finally:
        worker.close()
    started = next(line for line in log.splitlines() if "worker.starting" in line)
    assert "cfb.price.sample" not in started and "payhub.ledger.recalc" not in started
    assert "escrow" in started and "dlq.replay" in started
