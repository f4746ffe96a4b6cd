"""`python -m tgworkers run` owns its process: what it does to that process besides the worker."""

from __future__ import annotations

import anyio
from redis.asyncio import Redis
from tests.support.jobs import GC_FROZEN_KEY
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers.engine.client import Client


async def test_the_start_up_heap_is_frozen_out_of_the_cyclic_gc(
    redis_url: str, redis: Redis, client: Client
) -> None:
    """A full collection walked every object start-up made: a ~34 ms stall of the worker's
    loop now and then, in the tail of pickups. A handler sees them frozen (`gc.freeze`)."""
    worker = start_worker(redis_url, processors="test.work")
    try:
        await client.enqueue("test.work", {"mode": "gc"})
        frozen = await wait_until(lambda: redis.get(GC_FROZEN_KEY), timeout_s=30, what="the run")
        assert int(frozen) > 10_000, worker.log()  # modules, classes, the SDKs: not a handful
    finally:
        worker.terminate()
        with anyio.fail_after(30):
            await anyio.to_thread.run_sync(worker.wait)
        worker.close()
