"""Issue 26's scripts on a 3-master Redis Cluster: rate permits, single-job actions, finish records."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import make_settings
from tests.integration.engine.test_cluster import cluster_url
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.ops.finished import FinishedJobs
from tgworkers.engine.ops.job_actions import JobActions
from tgworkers.engine.ops.rates import RateLimiter
from tgworkers.engine.wire.connection import connect
from tgworkers.engine.wire.scripts import Scripts

__all__ = ["cluster_url"]

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")


async def test_the_controls_scripts_run_on_a_cluster(cluster_url, registry, worker_factory):
    settings = make_settings(cluster_url, PARTITIONS_TEST_WORK=3)
    redis = connect(settings.redis_url.reveal(), cluster=True)
    try:
        limiter = RateLimiter(redis, Live(settings))
        permits = [await limiter.take("peer", "playhub", 100.0, max_wait_ms=50) for _ in range(3)]
        assert [p.booked for p in permits] == [True, True, True]
        layout = Layout(settings)
        client = Client(redis, registry, settings)
        actions = JobActions(redis, registry, layout, Scripts(redis))
        gone = await client.enqueue("test.work", {"n": 1}, id="c-gone", delay_s=3600)
        soon = await client.enqueue("test.unique", {"n": 77}, delay_s=3600)
        assert (await actions.delete("test.work", gone.id)).state == "deleted"
        async with worker_factory(settings, registry, "test.work"):
            assert (await actions.run_now("test.work", soon.id)).state == "ready"
            finder = FinishedJobs(redis, registry, layout)
            page = await wait_until(
                lambda: _one(finder, "test.unique:77"), timeout_s=10, what="the finish record"
            )
        assert page.items[0].attempt == 1
    finally:
        await redis.aclose()


async def _one(finder: FinishedJobs, prefix: str):
    page = await finder.search(prefix, queue=None, limit=5)
    return page if page.items else None
