"""Fixtures: a real redis-server per test session, flushed per test; engines.

No fakeredis, no mocks: every engine test talks to a real server.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import redis as sync_redis
from redis.asyncio import Redis

from tests.support import jobs as test_jobs
from tests.support.redis_server import session_redis
from tgworkers.config import Settings, load_settings
from tgworkers.engine.client import Client
from tgworkers.engine.context import Resources
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.worker import Worker

ALL_PROMISES = range(1, 13)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    url, owner = session_redis()
    yield url
    if owner is not None:
        owner.close()


@pytest.fixture(scope="session")
def tgw_redis_server(redis_server_url: str) -> str:
    """The toolkit's fixtures (tgworkers.testing) share this session's server."""
    return redis_server_url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    client = sync_redis.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    return redis_server_url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, protocol=2)
    yield client
    await client.aclose()


def make_settings(redis_url: str, **env: Any) -> Settings:
    base = {
        "REDIS_URL": redis_url,
        "VISIBILITY_TIMEOUT_MS": "3000",
        "BACKOFF_DEFAULT_MS": "20",
        "BACKOFF_MAX_MS": "100",
        "WAIT_MAX_MS": "60000",  # short backoffs; explicit waits (retryAt) honoured
        "SHUTDOWN_GRACE_S": "2",
    }
    base.update({k: str(v) for k, v in env.items()})
    return load_settings(base, None)


@pytest.fixture
def registry() -> Registry:
    return Registry(test_jobs.PROCESSORS)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def client(redis: Redis, registry: Registry, settings: Settings) -> Client:
    return Client(redis, registry, settings)


@asynccontextmanager
async def running_worker(
    settings: Settings,
    registry: Registry,
    processors: str,
    *,
    consumer: str = "w1",
    resources: Resources | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Worker]:
    """A worker running in this test's event loop until the block ends."""
    worker = Worker(
        settings=settings, registry=registry, processors=registry.select(processors),
        consumer=consumer, resources=resources, clock=clock,
    )  # fmt: skip
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: worker.run(handle_signals=False))
        with anyio.fail_after(10):
            await worker.started.wait()
        try:
            yield worker
        finally:
            worker.request_stop()


@pytest.fixture
def worker_factory() -> Any:
    return running_worker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TGW_SKIP_CHAOS") == "1":
        for item in items:
            if item.get_closest_marker("chaos"):
                item.add_marker(pytest.mark.skip(reason="TGW_SKIP_CHAOS=1"))
