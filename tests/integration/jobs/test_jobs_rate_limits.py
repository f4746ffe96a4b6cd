"""A peer's shared rate limit holds for three worker processes together.

Three real `run` subprocesses settle CFB bets against the fake PlayHub under
`RATE_PLAYHUB_PER_S`; the fake records when each call arrived. Counted over a
measured window of the steady state, the calls of all three together stay
within 10 % of the limit, and no job spent an attempt waiting for a permit.
"""

from __future__ import annotations

from tests.conftest import make_settings
from tests.support.platform_jobs import attempts, now_ms, peers_env
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.stats import StatsReader
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS

RATE = 20
JOBS = 140
SETTLE = "/internal/v1/cfb/settle"


async def test_peer_rate_limit_holds_across_three_worker_processes(fake, jwk_text, redis, settings):
    for n in range(JOBS):
        fake.state.add_bet(f"b_{n}", t_end_ms=now_ms() - 1000)
    client = Client(redis, Registry(PROCESSORS), settings)
    for n in range(JOBS):
        await client.enqueue("cfb.settle", {"betId": f"b_{n}"})
    env = {**peers_env(fake, jwk_text), "RATE_PLAYHUB_PER_S": str(RATE)}
    url = settings.redis_url.reveal()
    workers = [
        start_worker(url, processors="cfb.settle", app="tgworkers.jobs:PROCESSORS", env=env)
        for _ in range(3)
    ]
    try:
        await wait_until(
            lambda: len(fake.requests("playhub", SETTLE)) >= JOBS,
            timeout_s=60, what=f"{JOBS} settle calls",
        )  # fmt: skip
    finally:
        for w in workers:
            w.close()
    calls = fake.requests("playhub", SETTLE)
    times = sorted(r.received_s for r in calls)
    start = times[20]  # the steady state: every process has started by then
    window_s = 4.0
    counted = sum(1 for t in times if start <= t < start + window_s)
    assert abs(counted - RATE * window_s) <= 0.1 * RATE * window_s, (counted, times)
    assert set(attempts(calls)) == {1}  # waiting for a permit spends no attempt
    assert len({r.headers["x-request-id"] for r in calls}) == JOBS
    doc = await StatsReader(redis, Registry(PROCESSORS), Layout(_limited(settings))).snapshot()
    [limit] = doc.limits
    assert (limit.scope, limit.name, limit.per_s) == ("peer", "playhub", RATE)
    assert limit.allowed + limit.waited == JOBS


def _limited(settings):
    return make_settings(settings.redis_url.reveal(), RATE_PLAYHUB_PER_S=str(RATE))
