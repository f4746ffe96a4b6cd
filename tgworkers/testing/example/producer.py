"""Enqueueing from another Python service with `tgworkers.Producer` (docs/producers.md).

Runs as it stands: `await enqueue_some(os.environ["REDIS_URL"], bets=["b_1", "b_2"])`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import tgworkers
from tgworkers.engine.client import EnqueueResult
from tgworkers.producer import Job


async def enqueue_some(redis_url: str, *, bets: list[str]) -> list[EnqueueResult]:
    t_end = datetime.now(UTC) + timedelta(minutes=5)  # when the bets end
    async with tgworkers.Producer.from_url(redis_url, prefix="tgw", origin="escrow") as producer:
        first = await producer.enqueue("cfb.settle", {"betId": bets[0]}, at=t_end)  # or Unix ms
        again = await producer.enqueue("cfb.settle", {"betId": bets[0]}, at=t_end)
        if again.created:  # False: a job with id cfb.settle:b_1 already existed
            raise RuntimeError("an id the queue holds was enqueued twice")
        expire = await producer.enqueue(
            "escrow.expire", {"escrowId": "e_1"}, delay=timedelta(hours=1)
        )
        replay = await producer.enqueue(
            "dlq.replay", {"queue": "escrow", "all": True}, id="replay-2026-12-01"
        )
        many = await producer.enqueue_many([Job("cfb.settle", {"betId": b}) for b in bets])
    return [first, again, expire, replay, *many]
