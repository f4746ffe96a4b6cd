"""Benchmarks run only on request: `pytest bench -m bench -s` (see bench/README.md)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "bench" not in (config.getoption("-m") or ""):
        for item in items:
            item.add_marker(pytest.mark.skip(reason="benchmarks run with -m bench"))


@pytest.fixture(scope="session")
def redis_server_url():
    from tests.support.redis_server import session_redis

    url, owner = session_redis()
    yield url
    if owner is not None:
        owner.close()
