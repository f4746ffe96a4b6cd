"""Issue 26's controls through the admin API: shared rate limits, single-job actions."""

from __future__ import annotations

from tests.support.admin_http import ADMIN, admin_client, ops_settings

from tgworkers.engine.live import Live
from tgworkers.engine.rates import RateLimiter


async def test_limits_lists_each_configured_limit_with_its_counters(redis, redis_url, registry):
    settings = ops_settings(redis_url, RATE_PLAYHUB_PER_S="50", RATE_QUEUE_TEST_WORK_PER_S="0.5")
    limiter = RateLimiter(redis, Live(settings))
    await limiter.take("peer", "playhub", 50.0, max_wait_ms=1000)
    await limiter.take("peer", "playhub", 50.0, max_wait_ms=1000)
    await limiter.take("queue", "test.work", 0.5, max_wait_ms=1000)
    await limiter.take("queue", "test.work", 0.5, max_wait_ms=1000)
    async with admin_client(settings, registry) as http:
        limits = (await http.get("/admin/v1/limits", headers=ADMIN)).json()["limits"]
        queues = (await http.get("/admin/v1/queues", headers=ADMIN)).json()
        anonymous = await http.get("/admin/v1/limits")
    assert limits == [
        {"scope": "peer", "name": "playhub", "perS": 50.0, "allowed": 1, "waited": 1,
         "refused": 0},
        {"scope": "queue", "name": "test.work", "perS": 0.5, "allowed": 1, "waited": 0,
         "refused": 1},
    ]  # fmt: skip
    assert queues["limits"] == limits
    assert anonymous.status_code == 401


async def test_without_limits_the_list_is_empty(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        answer = await http.get("/admin/v1/limits", headers=ADMIN)
    assert answer.json() == {"limits": []}
