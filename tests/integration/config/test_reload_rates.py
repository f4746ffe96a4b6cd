"""A reload document changes a shared rate limit for the next job (issue 26)."""

from __future__ import annotations

from redis.asyncio import Redis
from tests.integration.config.test_hot_reload import WITHIN_ONE_POLL_S, reloading_worker
from tests.support.config_server import ConfigServer
from tests.support.engine_state import runs
from tests.support.wait import wait_until

from tgworkers.bootstrap.reload import HttpSource
from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry


async def test_a_queue_rate_set_by_a_document_spaces_the_next_jobs_and_lifts_when_removed(
    redis_url: str, redis: Redis, registry: Registry, client: Client
) -> None:
    server = ConfigServer({"RATE_QUEUE_TEST_WORK_PER_S": "4"})
    try:
        async with reloading_worker(redis_url, registry, HttpSource(server.url)) as (w, _):
            gate = w.runtime("test.work").executor.rate
            assert gate is not None
            await wait_until(lambda: gate.per_s() == 4.0, timeout_s=WITHIN_ONE_POLL_S,
                             what="the limit applied")  # fmt: skip
            for n in range(5):
                await client.enqueue("test.work", {"n": n})
            await wait_until(lambda: _count(redis, 5), timeout_s=10, what="5 runs")
            starts = sorted(r.start_ms for r in await runs(redis))
            assert starts[-1] - starts[0] >= 4 * 250 * 0.9, starts  # 4 a second
            server.set({})
            await wait_until(lambda: gate.per_s() is None, timeout_s=WITHIN_ONE_POLL_S,
                             what="the limit lifted")  # fmt: skip
    finally:
        server.stop()


async def _count(redis: Redis, n: int) -> bool:
    return len(await runs(redis)) >= n
