"""Meta-test: every promise of contracts/engine.md has a test marked with it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMISES = set(range(1, 13))
# Promises whose tests come with a later issue; listed here so the gap is visible
# (printed by this test) and so it fails once a test exists and the entry is stale.
PENDING: dict[int, str] = {}


def promises_with_tests() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for path in ROOT.rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "promise"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.setdefault(int(node.args[0].value), []).append(path.name)
    return found


def test_every_engine_promise_has_a_test() -> None:
    covered = set(promises_with_tests())
    missing = sorted(PROMISES - covered - set(PENDING))
    assert not missing, f"promises without a test: {missing}"
    stale = sorted(set(PENDING) & covered)
    assert not stale, f"promises listed as pending but tested now: {stale}"
    for n, why in PENDING.items():
        print(f"promise {n} still lacks a test: {why}")
