"""The pytest plugin (entry point `pytest11`): fixtures for testing job types.

Every fixture is named `tgw_*`, so a project's own `redis`, `fake` or `worker`
fixtures are never shadowed, and nothing runs unless a test asks for a fixture.

- `tgw_redis_url`: a private `redis-server` for the session (`TGW_TEST_REDIS_URL`
  to use another), flushed before each test;
- `tgw_peers`: the fake peers on loopback (`FakePeerService`), emptied per test;
- `tgw_clock`: a ticking `FakeClock` (real time + what `advance` added) the worker's
  schedules and the fake peers follow;
- `tgw_worker`: `async with tgw_worker("cfb.settle") as h:` a `Harness`.

The app (processors) defaults to the ini option `tgworkers_app` (`module:ATTR`),
else the jobs installed with tgworkers; `tgw_worker(..., app=...)` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tgworkers.testing.clock import FakeClock
    from tgworkers.testing.peers import FakePeerService


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("tgworkers_app", "module:ATTR of the processors tgw_worker runs", default="")


@pytest.fixture(scope="session")
def tgw_redis_server() -> Iterator[str]:
    """The session's Redis URL: `TGW_TEST_REDIS_URL`, else a private redis-server."""
    if url := os.environ.get("TGW_TEST_REDIS_URL"):
        yield url
        return
    from tgworkers.devstack.redis import RedisServer  # noqa: PLC0415 - only when used

    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def tgw_redis_url(tgw_redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    import redis  # noqa: PLC0415

    with redis.Redis.from_url(tgw_redis_server) as client:
        client.flushdb()
    return tgw_redis_server


@pytest.fixture(scope="session")
def tgw_peer_service() -> Iterator[FakePeerService]:
    from tgworkers.testing.peers import FakePeerService  # noqa: PLC0415

    service = FakePeerService().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def tgw_clock() -> FakeClock:
    from tgworkers.testing.clock import FakeClock  # noqa: PLC0415

    return FakeClock(ticking=True)


@pytest.fixture
def tgw_peers(tgw_peer_service: FakePeerService, tgw_clock: FakeClock) -> FakePeerService:
    """The fake peers (one server per session), emptied for this test, on its clock."""
    tgw_peer_service.reset()
    tgw_peer_service.state.clock = tgw_clock
    return tgw_peer_service


@pytest.fixture
def tgw_worker(
    request: pytest.FixtureRequest,
    tgw_redis_url: str,
    tgw_peers: FakePeerService,
    tgw_clock: FakeClock,
) -> Any:
    """Starts a worker of the named processors, as an async context manager."""
    from tgworkers.testing.harness import run_worker  # noqa: PLC0415

    default_app = str(request.config.getini("tgworkers_app")) or None

    def start(processors: str, *, app: Any = None, env: dict[str, Any] | None = None) -> Any:
        return run_worker(
            tgw_redis_url,
            processors,
            app=app or default_app,
            peers=tgw_peers,
            clock=tgw_clock,
            env=env,
        )

    return start
