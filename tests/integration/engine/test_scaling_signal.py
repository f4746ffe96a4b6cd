"""The autoscaler's signal, proved against a live engine (promise 12, docs/scaling.md).

KEDA's `redis-streams` scaler has three metrics, one Redis query each: `XLEN`
(`streamLength`), the `XPENDING` summary (`pendingEntriesCount`) and the group's
`lag` from `XINFO GROUPS` (`lagCount`). This test runs those same queries while a
backlog of N jobs waits over P partitions, with no worker and with workers, and
shows which one tracks the backlog: the chart scales on the one that does.

Settled entries are removed with XDEL, so a partition's stream holds exactly its
ready and in-flight jobs: `XLEN` summed over partitions is the backlog. The PEL
only counts what workers hold (at most their concurrency, nothing with no worker,
so it can never wake a group scaled to zero). `lag` leaves out in-flight jobs (it
says 0 while the last jobs still run), and once an entry not yet delivered was
deleted (a manual XDEL, a drain racing new enqueues) Redis reports it as nil until
the group has read past the deleted entry, i.e. exactly while the backlog is
largest (checked on redis 7.0.15).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from tests.conftest import make_settings
from tests.support.helm import render
from tests.support.wait import wait_until

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.wire.keys import GROUP

N = 120
P = 3
CONCURRENCY = 8  # test.work's declared concurrency


async def keda_stream_length(redis: Any, stream: str) -> int:
    """KEDA `streamLength`: `XLEN stream` (no consumerGroup in the trigger)."""
    return int(await redis.xlen(stream))


async def keda_pending(redis: Any, stream: str) -> int:
    """KEDA `pendingEntriesCount`: the count of the `XPENDING stream group` summary."""
    if not await redis.exists(stream):
        return 0
    return int((await redis.xpending(stream, GROUP))["pending"])


async def keda_lag(redis: Any, stream: str) -> int | None:
    """KEDA `lagCount`: the group's `lag` from `XINFO GROUPS` (None when Redis says nil)."""
    for group in await redis.xinfo_groups(stream):
        if group["name"] in (GROUP, GROUP.encode()):
            lag = group.get("lag")
            return None if lag is None else int(lag)
    return None


class Signals:
    """The three metrics, summed over a queue's partitions."""

    def __init__(self, redis: Any, streams: list[str]) -> None:
        self.redis = redis
        self.streams = streams

    async def stream_length(self) -> int:
        return sum([await keda_stream_length(self.redis, s) for s in self.streams])

    async def pending(self) -> int:
        return sum([await keda_pending(self.redis, s) for s in self.streams])

    async def lags(self) -> list[int | None]:
        return [await keda_lag(self.redis, s) for s in self.streams]


async def _done(redis: Any) -> int:
    return int(await redis.llen("test:runs"))


@pytest.fixture
def setup(redis, redis_url, registry):
    settings = make_settings(redis_url, PARTITIONS_TEST_WORK=P)
    proc = registry.queue("test.work")
    streams = [pk.ready for pk in Layout(settings).partitions(proc)]
    return settings, Client(redis, registry, settings), Signals(redis, streams)


@pytest.mark.promise(12)
async def test_stream_length_tracks_the_backlog_with_no_worker(
    redis, registry, worker_factory, setup
):
    settings, client, signals = setup
    async with worker_factory(settings, registry, "test.work"):
        pass  # the consumer groups exist, as on any queue that ever ran
    reqs = [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(N)]
    await client.enqueue_many(reqs)
    assert await signals.stream_length() == N
    assert await signals.pending() == 0, "the PEL sees nothing with no worker: no wake-up"
    assert all([await redis.xlen(s) > 0 for s in signals.streams]), "spread over P partitions"
    await client.enqueue("test.work", {"n": -1}, delay_s=3600)
    assert await signals.stream_length() == N, "a job due later is not backlog yet"


@pytest.mark.promise(12)
async def test_stream_length_tracks_the_backlog_while_workers_run_and_drops_to_zero(
    redis, registry, worker_factory, setup
):
    settings, client, signals = setup
    async with worker_factory(settings, registry, "test.work"):
        pass  # the consumer groups exist
    await client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": -i}, id=f"pre-{i}") for i in range(30)]
    )
    for stream in signals.streams:  # one undelivered entry deleted behind the engine's back
        ((newest, _),) = await redis.xrevrange(stream, count=1)
        await redis.xdel(stream, newest)
    assert all(lag is None for lag in await signals.lags())
    total = N + await signals.stream_length()
    reqs = [EnqueueRequest(name="test.work", payload={"n": i, "sleep_ms": 100}) for i in range(N)]
    await client.enqueue_many(reqs)
    samples: list[tuple[int, int, int, list[int | None]]] = []
    async with worker_factory(settings, registry, "test.work"):

        async def sample() -> bool:
            length, pending, lags = (
                await signals.stream_length(),
                await signals.pending(),
                await signals.lags(),
            )
            done_after = await _done(redis)
            samples.append((length, pending, done_after, lags))
            return done_after >= total

        await wait_until(sample, timeout_s=60, what="all jobs done", interval_s=0.05)
        await wait_until(lambda: _zero(signals), timeout_s=10, what="stream length back to 0")
        assert await signals.pending() == 0
    assert await signals.stream_length() == 0, "with no worker left, still 0"
    waiting = [s for s in samples if s[2] < total]
    assert len(waiting) >= 3, samples
    for length, pending, done_after, _ in waiting:
        # every job not yet settled is in a stream: ready or in flight
        assert total - done_after <= length <= total, (length, done_after)
        assert pending <= CONCURRENCY * P, pending  # the PEL is bounded by concurrency
    assert any(length > CONCURRENCY * P for length, *_ in waiting), "PEL alone under-counts"
    assert waiting[0][3] == [None] * P, "lag is nil while the backlog is at its largest"
    tail = [length for length, _, _, lags in waiting if length and lags == [0] * P]
    assert tail, "lag says 0 while jobs are still in flight: scale-in under running jobs"


async def _zero(signals: Signals) -> bool:
    return await signals.stream_length() == 0


# -- the chart's ScaledObject against the live backlog ---------------------------------

T = 10  # backlogPerReplica


def keda_formula(formula: str, metrics: dict[str, int]) -> int:
    """The scalingModifiers formula as KEDA evaluates it, for the one shape the chart renders.

    The chart only ever renders a sum of trigger names (`q_a_0 + q_a_1 + ...`); anything else
    fails here rather than being evaluated wrongly.
    """
    assert re.fullmatch(r"\w+( \+ \w+)*", formula), formula
    return sum(metrics[name] for name in formula.split(" + "))


@pytest.mark.promise(12)
async def test_the_charts_scaled_object_sizes_the_group_on_its_whole_backlog(
    redis, registry, worker_factory, setup
):
    settings, client, signals = setup
    group = {
        "name": "work", "processors": ["test.work"], "replicas": 1,
        "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 50, "backlogPerReplica": T},
    }  # fmt: skip
    docs = render(
        sets={
            "env.QUEUE_PREFIX": settings.queue_prefix,
            "partitions": {"test.work": P},
            "groups": [group],
        }
    )
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
    assert modifiers["metricType"] == "AverageValue"
    streams = {t["name"]: t["metadata"]["stream"] for t in scaled["spec"]["triggers"]}
    assert sorted(streams.values()) == sorted(signals.streams), "the engine's partition streams"
    assert all("consumerGroup" not in t["metadata"] for t in scaled["spec"]["triggers"])

    async def keda_metric() -> tuple[int, dict[str, int]]:
        per_trigger = {name: await keda_stream_length(redis, s) for name, s in streams.items()}
        return keda_formula(modifiers["formula"], per_trigger), per_trigger

    async with worker_factory(settings, registry, "test.work"):
        pass  # the consumer groups exist
    await client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(N)]
    )
    composite, per_trigger = await keda_metric()
    assert composite == N, "the composite metric is the whole backlog"
    assert composite > float(modifiers["activationTarget"]), "active: wakes a group at zero"
    # the HPA on the composite AverageValue metric: ceil(metric / target)
    assert math.ceil(composite / float(modifiers["target"])) == math.ceil(N / T) == 12
    # what the HPA would ask for from the triggers alone: the largest per-trigger count
    largest = max(math.ceil(v / T) for v in per_trigger.values())
    assert largest < math.ceil(N / T), (largest, per_trigger)

    async with worker_factory(settings, registry, "test.work"):

        async def drained() -> bool:
            return (await keda_metric())[0] == 0

        await wait_until(drained, timeout_s=60, what="backlog drained")
    composite, _ = await keda_metric()
    assert not composite > float(modifiers["activationTarget"]), "inactive: may scale to zero"
