"""Sample prices into per-minute bars and post each minute's bars once it closes.

Each run reads the latest prices of `CFB_PRICE_SYMBOLS` and folds them into the
bar of the sample's minute (open/high/low/close/samples per symbol), kept in the
partition's `bars` hash for `PRICE_BARS_RETENTION` minutes. A minute is closed
once the worker's clock, or a sample's own `ts`, is in a later minute: its bars
are posted to PlayHub once, with the key `cfb.price.sample:{minute}`, and marked
posted. A crash between the post and the
mark re-posts with the same key, which PlayHub dedupes. A sample seen twice (same
`ts`) counts once, so a retried run does not inflate `samples`.

Hash fields: `bar:{minute}:{symbol}` -> JSON bar, `posted:{minute}` -> "1".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, JobType, Outcome, PermanentError
from tgworkers.jobs.settings import JobSettings
from tgworkers.peers import Peers, PriceBar

log = structlog.get_logger("tgworkers.jobs.cfb")

MINUTE_MS: Final = 60_000
BARS: Final = "bars"
"""The job's own hash in its partition (`ctx.key`): `bar:{minute}:{symbol}`, `posted:{minute}`."""


class SamplePrices(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload: `{}` (scheduled)."""


class Bar(msgspec.Struct, kw_only=True, rename="camel"):
    """One symbol's minute as stored in Redis; prices are decimal strings."""

    open: str
    high: str
    low: str
    close: str
    samples: int
    last_ts: int


_bar_decoder: Final = msgspec.json.Decoder(Bar)


def fold(bar: Bar | None, price: str, ts_ms: int) -> Bar | None:
    """The bar with one more sample, or None when the sample was already counted."""
    if bar is None:
        return Bar(open=price, high=price, low=price, close=price, samples=1, last_ts=ts_ms)
    if ts_ms <= bar.last_ts:
        return None
    value = Decimal(price)
    high = price if value > Decimal(bar.high) else bar.high
    low = price if value < Decimal(bar.low) else bar.low
    return Bar(
        open=bar.open, high=high, low=low, close=price, samples=bar.samples + 1, last_ts=ts_ms
    )


async def _record(ctx: JobContext, peers: Peers, symbols: tuple[str, ...]) -> tuple[int, int]:
    """Fold the latest prices into their minutes' bars: (new samples, newest minute seen)."""
    if peers.price is None:  # the processor requires SVC_PRICE_URL; defensive only
        raise PermanentError("SVC_PRICE_URL is not set: no price service to sample")
    added = newest = 0
    for price in await peers.price.get_prices(symbols):
        minute = price.ts_ms - price.ts_ms % MINUTE_MS
        newest = max(newest, minute)
        if await ctx.redis.hexists(ctx.key(BARS), f"posted:{minute}"):
            continue  # a late sample of a minute already posted
        field = f"bar:{minute}:{price.symbol}"
        raw = await ctx.redis.hget(ctx.key(BARS), field)
        bar = fold(_bar_decoder.decode(raw) if raw else None, price.price, price.ts_ms)
        if bar is not None:
            await ctx.redis.hset(ctx.key(BARS), field, msgspec.json.encode(bar))
            added += 1
    return added, newest


def _group(stored: Mapping[Any, Any]) -> tuple[dict[int, list[PriceBar]], set[int]]:
    """Bars by minute, and the minutes already posted."""
    bars: dict[int, list[PriceBar]] = defaultdict(list)
    posted: set[int] = set()
    for key, raw in stored.items():
        text = key.decode() if isinstance(key, bytes) else str(key)
        kind, minute_text, *rest = text.split(":", 2)
        minute = int(minute_text)
        if kind == "posted":
            posted.add(minute)
        elif kind == "bar":
            b = _bar_decoder.decode(raw)
            bars[minute].append(
                PriceBar(symbol=rest[0], minute_ms=minute, open=b.open, high=b.high,
                         low=b.low, close=b.close, samples=b.samples)
            )  # fmt: skip
    return bars, posted


async def _post_closed(ctx: JobContext, peers: Peers, now_minute: int, cutoff: int) -> int:
    """Post every closed, unposted minute within retention; drop what is past retention."""
    bars, posted = _group(await ctx.redis.hgetall(ctx.key(BARS)))
    sent = 0
    for minute in sorted(bars):
        if minute < now_minute and minute not in posted and minute >= cutoff:
            ordered = sorted(bars[minute], key=lambda b: b.symbol)
            await peers.playhub.store_price_bars(ordered, key=f"cfb.price.sample:{minute}")
            await ctx.redis.hset(ctx.key(BARS), f"posted:{minute}", "1")
            log.info("price.minute_posted", minute=minute, bars=len(ordered))
            sent += 1
    expired = [f"bar:{m}:{b.symbol}" for m in bars if m < cutoff for b in bars[m]]
    expired += [f"posted:{m}" for m in posted if m < cutoff]
    if expired:
        await ctx.redis.hdel(ctx.key(BARS), *expired)
    return sent


async def sample_prices(ctx: JobContext, payload: SamplePrices) -> Outcome:
    peers = ctx.resources(Peers)
    settings = ctx.resources(JobSettings)
    now_ms = ctx.now_ms()
    now_minute = now_ms - now_ms % MINUTE_MS
    cutoff = now_minute - settings.price_bars_retention_min * MINUTE_MS
    added, newest = await _record(ctx, peers, settings.cfb_price_symbols)
    # a minute is closed once the clock or the price service's own time is past it
    sent = await _post_closed(ctx, peers, max(now_minute, newest), cutoff)
    log.info("price.sampled", samples=added, minutes_posted=sent)
    return Done()


SAMPLE_PRICES = JobType(
    name="cfb.price.sample",
    payload=SamplePrices,
    handler=sample_prices,
    partition_key=lambda p: "bars",  # every run in one partition: its bars hash is the state
    timeout_s=30.0,
)
