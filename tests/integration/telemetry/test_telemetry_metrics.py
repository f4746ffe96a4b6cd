"""Every instrument of the catalogue is recorded by a real run, and `/metrics` serves it.

One workload on real Redis and the fake peers: a done job, a retried one, a snoozed
one, a dead-lettered one, a run whose lease is taken over, an entry of a dead
consumer reclaimed and one deleted while pending, a schedule firing, the ledger job
finding a violation, a peer refusing our token, a config reload whose source is
missing, and a queue stats snapshot.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest
from joserfc.jwk import OKPKey
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import make_settings, running_worker
from tests.support import jobs as test_jobs
from tests.support.admin_http import admin_client
from tests.support.fake_peers import peers_config
from tests.support.platform_jobs import ISSUER
from tests.support.wait import wait_until

from tgworkers.bootstrap.reload import FileSource, Reloader
from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.ops.rates import RateLimiter
from tgworkers.engine.ops.stats import StatsReader
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.broker import Broker
from tgworkers.engine.telemetry.recorder import INSTRUMENTS, count_ledger_violation
from tgworkers.engine.wire.keys import GROUP
from tgworkers.jobs.payhub import ledger_recalc
from tgworkers.peers import PeerAuthError, ServiceKey, open_peers

ZERO_ALLOWED = {"tgworkers.schedule.skips"}  # nothing overlapped or misfired in this run


def total(otel, name: str) -> float:
    points: list[Any] = otel.metrics().get(name, [])
    values = [float(getattr(p, "count", None) or getattr(p, "value", 0)) for p in points]
    return sum(values)


async def ledger_and_auth(otel, jobs, fake) -> None:
    fake.state.set_violations([{"code": "negative_balance", "account": "u_1", "detail": "-5"}])
    ledger_recalc.violation_hooks.append(count_ledger_violation)
    try:
        async with jobs("payhub.ledger.recalc") as h:
            await h.enqueue("payhub.ledger.recalc", {})
            await wait_until(lambda: total(otel, "tgworkers.ledger.violations"), what="violation")
    finally:
        ledger_recalc.violation_hooks.remove(count_ledger_violation)
    stranger = json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))
    async with open_peers(
        peers_config(fake, issuer=ISSUER), ServiceKey.from_jwk_text(stranger)
    ) as p:
        with pytest.raises(PeerAuthError):
            await p.payhub.ledger_invariants()


async def rate_permits(otel, redis, redis_url) -> None:
    """A peer limit of 5/s asked 15 times at once: one permit at once, some booked, the rest
    refused; each counted by outcome (what an operator tunes `RATE_*_PER_S` by)."""
    limiter = RateLimiter(redis, Live(make_settings(redis_url)))
    await asyncio.gather(*(limiter.admit("peer", "playhub", 5.0) for _ in range(15)))
    points = otel.metrics()["tgworkers.rate_limit.permits"]
    counts = {p.attributes["tgworkers.outcome"]: p.value for p in points}
    assert {(p.attributes["tgworkers.rate_limit.scope"], p.attributes["tgworkers.rate_limit.name"])
            for p in points} == {("peer", "playhub")}  # fmt: skip
    assert counts.keys() == {"allowed", "waited", "refused"}, counts
    assert sum(counts.values()) == 15


async def ghost_entries(redis, settings, registry) -> None:
    """A consumer that read two entries and died; one of them was deleted since."""
    (pk,) = Layout(settings).partitions(registry.processors["test.work"])
    ghost = Broker(redis, redis, "ghost")
    await ghost.ensure_groups([pk])
    got = await ghost.read([pk], count=2, block_ms=None)
    assert len(got) == 2
    await redis.xdel(pk.ready, got[1].entry_id)


async def take_lease(redis, worker, job_id: str) -> None:
    """Another consumer claims the entry of the slow job while it runs: its run loses the lease.

    Only that job's entry: the not-due job is also waiting (on Redis) for a moment, and taking
    its entry would refuse its snooze, which this test counts."""
    rt = worker.runtime("test.work")
    running = await wait_until(
        lambda: [d for d in rt.running if d.job_id == job_id], what="the slow job running"
    )
    d = running[0]
    await redis.xclaim(d.pk.ready, GROUP, "ghost", 0, [d.entry_id])


async def engine_workload(otel, redis, redis_url, tmp_path) -> tuple[Any, Registry, Reloader]:
    settings = make_settings(redis_url, VISIBILITY_TIMEOUT_MS=600)
    registry = Registry(test_jobs.PROCESSORS)
    client = Client(redis, registry, settings)
    await client.enqueue("test.work", {"n": 100})
    await client.enqueue("test.work", {"n": 101})
    await ghost_entries(redis, settings, registry)
    async with running_worker(settings, registry, "test.work,test.tick") as worker:
        for payload in ({"n": 1}, {"n": 2, "fail_times": 1}, {"n": 3, "mode": "not_due"},
                        {"n": 4, "mode": "permanent"}):  # fmt: skip
            await client.enqueue("test.work", payload)
        slow = await client.enqueue("test.work", {"n": 5, "sleep_ms": 1500})
        await take_lease(redis, worker, slow.id)
        for name in ("tgworkers.jobs.processed", "tgworkers.jobs.retried", "tgworkers.jobs.snoozed",
                     "tgworkers.jobs.dead_lettered", "tgworkers.entries.reclaimed",
                     "tgworkers.entries.lost", "tgworkers.entries.lease_lost",
                     "tgworkers.schedule.fires"):  # fmt: skip
            await wait_until(functools.partial(total, otel, name), timeout_s=8, what=name)
        await redis.config_set("maxmemory", 1)  # the heartbeat's write is refused: OOM
        try:
            await wait_until(
                functools.partial(total, otel, "tgworkers.redis.errors"), timeout_s=8,
                what="a Redis error counted",
            )  # fmt: skip
        finally:
            await redis.config_set("maxmemory", 0)
        await otel.telemetry.refresh_depth(StatsReader(redis, registry, Layout(settings)))
        reloader = Reloader(worker=worker, registry=registry, base_env={},
                            select=lambda *_: worker.processors,
                            source=FileSource(tmp_path / "missing.json"),
                            settings=settings)  # fmt: skip
        otel.telemetry.track_reloader(reloader)
        await reloader.poll_once()
    return settings, registry, reloader  # tracked weakly: keep it alive until collected


async def test_every_instrument_is_recorded_and_served_on_metrics(
    otel_prometheus, redis, redis_url, fake, jobs, tmp_path
):
    otel = otel_prometheus
    await ledger_and_auth(otel, jobs, fake)
    await rate_permits(otel, redis, redis_url)
    settings, registry, _reloader = await engine_workload(otel, redis, redis_url, tmp_path)

    recorded = otel.metrics()
    missing = [s.name for s in INSTRUMENTS if not recorded.get(s.name)]
    assert not missing, f"not recorded by the run: {missing}"
    zero = [s.name for s in INSTRUMENTS if s.name not in ZERO_ALLOWED and not total(otel, s.name)
            and s.kind != "observable_gauge"]  # fmt: skip
    assert not zero, f"recorded only zeros: {zero}"
    dead = {p.attributes["tgworkers.reason"] for p in recorded["tgworkers.jobs.dead_lettered"]}
    assert "permanent" in dead
    failed = {p.attributes["error.type"] for p in recorded["tgworkers.jobs.failed"]}
    assert "RuntimeError" in failed and "PermanentError" in failed
    states = {p.attributes["tgworkers.queue.state"] for p in recorded["tgworkers.queue.depth"]}
    assert states == {"ready", "inflight", "delayed", "dlq"}
    auth = recorded["tgworkers.peer.auth_rejections"][0].attributes
    assert auth == {"tgworkers.peer.name": "payhub", "http.response.status_code": 401}

    async with admin_client(settings, registry) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    samples = {s.name for fam in text_string_to_metric_families(response.text) for s in fam.samples}
    absent = [n for spec in INSTRUMENTS for n in spec.series if n not in samples]
    assert not absent, f"/metrics lacks {absent}"
    ready = [s for fam in text_string_to_metric_families(response.text) for s in fam.samples
             if s.name == "tgworkers_queue_depth" and s.labels["tgworkers_queue_state"] == "dlq"
             and s.labels["messaging_destination_name"] == "test.work"]  # fmt: skip
    assert ready and ready[0].value >= 1


async def test_pickup_latency_is_the_wait_before_a_run_not_the_run(otel, redis, redis_url):
    """A job whose handler waits 2 s: its pickup is recorded once its first step is over
    (`Telemetry.picked_up`), measured as it began, so it holds none of the run's time."""
    settings = make_settings(redis_url)
    registry = Registry(test_jobs.PROCESSORS)
    client = Client(redis, registry, settings)
    async with running_worker(settings, registry, "test.work"):
        await client.enqueue("test.work", {"n": 1, "sleep_ms": 2000})
        points = await wait_until(
            lambda: otel.metrics().get("tgworkers.job.pickup_latency"), what="a pickup recorded"
        )
        (point,) = points
        assert point.count == 1
        assert point.attributes == {
            "messaging.destination.name": "test.work", "tgworkers.job.name": "test.work",
        }  # fmt: skip
        assert not await redis.lrange(test_jobs.RUNS_KEY, 0, -1), "recorded after the run"
    assert 0 <= point.sum < 1.5, point.sum  # the run's 2 s is not in it
