"""`pytest bench -m bench -s` runs the comparison once (one round); prints, never asserts.

The full form is `python -m bench.peers` (3 rounds, see bench/README.md). Peers that are
not installed in this interpreter (the `bench-peers` extra, scripts/setup-peers-env) are
named as skipped; tgworkers and the raw redis-py floor always run.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.peers.driver import ROOT

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]


def test_peers_comparison_one_round() -> None:
    subprocess.run([sys.executable, "-m", "bench.peers", "--rounds", "1"], cwd=ROOT, check=True)
