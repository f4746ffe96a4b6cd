"""cfb.price.sample: minute bars in Redis, each closed minute posted once."""

from __future__ import annotations

import json

from tests.support.platform_jobs import now_ms

PRICES = "/internal/v1/cfb/prices"
MINUTE = 60_000


async def sample(h, n: int) -> None:
    job = await h.enqueue("cfb.price.sample", {}, id=f"sample-{n}")
    await h.wait_done("cfb.price.sample", job.id)


def bars_key(h) -> str:
    proc = h.worker.registry.processors["cfb.price.sample"]
    return h.worker.layout.partition_for(proc, "bars").job_key("bars")


async def test_samples_fold_into_a_minute_bar_posted_once_when_the_minute_closes(jobs, fake, redis):
    minute = now_ms() - now_ms() % MINUTE + 5 * MINUTE  # the price service's own clock
    async with jobs("cfb.price.sample", CFB_PRICE_SYMBOLS="TON-USD,BTC-USD") as h:
        for n, (price, offset) in enumerate([("5.12", 1), ("5.20", 2), ("5.10", 3), ("5.18", 4)]):
            fake.state.set_price("TON-USD", price, ts_ms=minute + offset * 1000)
            await sample(h, n)
        await sample(h, 9)  # the same ts again: not a new sample
        stored = json.loads(await redis.hget(bars_key(h), f"bar:{minute}:TON-USD"))
        assert h.calls("playhub", PRICES) == []  # the minute is still open
        fake.state.set_price("TON-USD", "5.30", ts_ms=minute + MINUTE + 1)
        await sample(h, 10)
        await sample(h, 11)
    assert (stored["open"], stored["high"], stored["low"], stored["close"], stored["samples"]) == (
        "5.12", "5.20", "5.10", "5.18", 4,
    )  # fmt: skip
    (post,) = h.calls("playhub", PRICES)
    assert post.idempotency_key == f"cfb.price.sample:{minute}"
    assert post.body == {"bars": [{"symbol": "TON-USD", "minute": minute, "open": "5.12",
                                   "high": "5.20", "low": "5.10", "close": "5.18", "samples": 4}]}  # fmt: skip
    assert h.calls("price", "/internal/v1/prices")[0].query == {"symbols": "TON-USD,BTC-USD"}


async def test_minutes_past_retention_are_dropped_unposted(jobs, fake, redis):
    current = now_ms() - now_ms() % MINUTE
    async with jobs("cfb.price.sample", PRICE_BARS_RETENTION="2") as h:
        fake.state.set_price("TON-USD", "5.00", ts_ms=current - 10 * MINUTE)
        await sample(h, 1)
        fake.state.set_price("TON-USD", "5.01", ts_ms=current - MINUTE + 5)
        await sample(h, 2)
        fields = sorted(k.decode() for k in await redis.hkeys(bars_key(h)))
    assert h.keys("playhub", PRICES) == [f"cfb.price.sample:{current - MINUTE}"]
    assert fields == [f"bar:{current - MINUTE}:TON-USD", f"posted:{current - MINUTE}"]
