"""Cancels an operator asked for, applied by the worker that holds the delivery.

The request side (the `cancels` hash, who asked, when a request is stale) is the operator
API's (`ops/job_actions.py`); this half runs in each worker's control loop and reaches
into its runtimes, so it lives with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.ops.job_actions import STALE_MS, decode_request
from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.wire.replies import text


async def apply_cancels(redis: Redis, key: str, runtimes: Iterable[ProcessorRuntime]) -> int:
    """The control loop's step: interrupt every job of ours an operator cancelled.

    One HGETALL (empty almost always). A request for a delivery this worker holds
    is acted on and deleted; one nobody acted on for `STALE_MS` is deleted by
    whoever sees it. Returns how many handlers this worker interrupted.
    """
    raw: Any = await redis.hgetall(key)
    if not raw:
        return 0
    by_queue = {rt.queue: rt for rt in runtimes}
    acted, now = 0, int(time.time() * 1000)
    for field, value in raw.items():
        queue, _, job_id = text(field).partition("/")
        try:
            request = decode_request(value)
        except msgspec.DecodeError:
            await redis.hdel(key, field)
            continue
        rt = by_queue.get(queue)
        if rt is not None and rt.executor.cancel_job(rt.deliveries.held(), job_id, request.by):
            acted += 1
            await redis.hdel(key, field)
        elif now - request.at > STALE_MS:
            await redis.hdel(key, field)
    return acted
