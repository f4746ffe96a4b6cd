"""The network between workers and Redis misbehaving (promises 1, 3, 13), through a TCP proxy.

Added latency, a black hole longer than the socket timeout (no RST: only timeouts
notice), and connection resets while jobs flow: no worker exits, nothing is lost,
nothing is dead-lettered, and a job that ran twice ran with the same id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, pk, queue_idle, queue_state, runs
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.wait import wait_until

from tgworkers.devstack.redis import free_port
from tgworkers.engine.client import Client, EnqueueRequest

pytestmark = [pytest.mark.chaos]


@pytest.fixture
def proxy(aof_server: RedisServer) -> Iterator[TcpProxy]:
    p = TcpProxy(aof_server.port).start()
    yield p
    p.close()


async def _all_ran(r: Redis, ids: set[str]) -> bool:
    return ids <= {x.job_id for x in await runs(r)}


async def _enqueue(client: Client, n: int, sleep_ms: int) -> set[str]:
    reqs = [
        EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": sleep_ms}) for i in range(n)
    ]
    return {j.id for j in await client.enqueue_many(reqs)}


@pytest.mark.promise(1)
@pytest.mark.promise(13)
async def test_latency_and_connection_resets_lose_nothing_and_stop_no_worker(
    r: Redis, chaos_client: Client, fleet: Fleet, proxy: TcpProxy
) -> None:
    workers = [await fleet.start_ready("test.work", REDIS_URL=proxy.url) for _ in range(2)]
    proxy.latency_s = 0.005
    ids = await _enqueue(chaos_client, 300, sleep_ms=10)
    for _ in range(10):  # every connection torn down with an RST, over and over
        await anyio.sleep(0.3)
        proxy.reset_all()
    proxy.heal()
    await wait_until(lambda: _all_ran(r, ids), timeout_s=60, what="all 300 jobs ran")
    try:
        await wait_until(lambda: queue_idle(r, pk()), timeout_s=20, what="queue idle")
    except AssertionError:
        state = await queue_state(r, pk())
        raise AssertionError(f"{state}\n{workers[0].log()[-4000:]}") from None
    assert await r.xlen(pk().dlq) == 0
    assert all(w.alive() for w in workers)
    assert proxy.connections > 2 * len(workers)  # they did reconnect
    counts = Counter(x.job_id for x in await runs(r))
    assert set(counts) == ids  # twice is allowed (at-least-once), always under its own id


@pytest.mark.promise(1)
@pytest.mark.promise(13)
async def test_a_black_hole_longer_than_the_socket_timeout_is_ridden_out(
    r: Redis, chaos_client: Client, fleet: Fleet, proxy: TcpProxy
) -> None:
    port = free_port()
    worker = await fleet.start_ready("test.work", REDIS_URL=proxy.url, PORT=str(port))
    ids = await _enqueue(chaos_client, 100, sleep_ms=20)
    await wait_until(lambda: r.exists("test:runs"), timeout_s=10, what="work under way")
    ready_url = f"http://127.0.0.1:{port}/readyz"
    async with httpx.AsyncClient(timeout=3) as http:
        proxy.black_hole()  # no RST, no FIN: packets just vanish
        try:

            async def unready() -> bool:
                return (await http.get(ready_url)).status_code == 503

            await wait_until(unready, timeout_s=20, what="/readyz says Redis is unreachable")
            await anyio.sleep(3)  # the partition's length beyond the socket timeout
            assert worker.alive(), worker.log()
        finally:
            proxy.heal()
        await wait_until(lambda: _all_ran(r, ids), timeout_s=60, what="every job after the heal")
        await wait_until(lambda: queue_idle(r, pk()), timeout_s=20, what="queue idle")

        async def ready() -> bool:
            return (await http.get(ready_url)).status_code == 200

        await wait_until(ready, timeout_s=15, what="/readyz ready again")
    assert await r.xlen(pk().dlq) == 0
    assert worker.alive()
