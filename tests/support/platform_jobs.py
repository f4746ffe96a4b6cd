"""The jobs' test harness: the real engine on real Redis, the fake peers over loopback.

`JobsHarness` runs a worker with the platform's processors and the resources `run`
registers (built by the same `job_resources`), and offers what a test asserts on:
the fake's recorded requests, the DLQ and the jobs' state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt

from tests.conftest import make_settings, running_worker
from tests.support.wait import wait_until
from tgworkers.cli.run import job_resources
from tgworkers.devstack.fake_peers import PEERS, FakePeers, RecordedRequest
from tgworkers.engine.client import EnqueueResult
from tgworkers.engine.ops.dlq import DeadJob
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.worker import Worker
from tgworkers.jobs import PROCESSORS

ISSUER = "tgworkers-jobs-test"
NEVER = "0 0 1 1 *"  # schedules fire only when a test asks
QUIET_CRONS = {
    "CRON_CFB_SETTLE_SWEEP": NEVER,
    "CRON_CFB_PRICE_SAMPLE": NEVER,
    "CRON_RECON_ORPHAN_HOLDS": NEVER,
    "CRON_LEDGER_RECALC": NEVER,
}


def now_ms() -> int:
    return int(time.time() * 1000)


def peers_env(fake: FakePeers, jwk_text: str) -> dict[str, str]:
    """The variables `run` reads to reach the fake peers."""
    urls = {f"SVC_{peer.upper()}_URL": fake.base_url(peer) for peer in PEERS}
    return {
        **urls,
        "SERVICE_JWT_PRIVATE_JWK": jwk_text,
        "SERVICE_JWT_ISSUER": ISSUER,
        "PEER_TIMEOUT_S": "5",
        **QUIET_CRONS,
    }


class JobsHarness:
    """One running worker plus the fake peers, with the assertions' vocabulary."""

    def __init__(self, worker: Worker, fake: FakePeers) -> None:
        self.worker = worker
        self.fake = fake
        self.client = worker.client
        self.dlq = worker.dead_letters

    async def enqueue(self, name: str, payload: Any, **kw: Any) -> EnqueueResult:
        return await self.client.enqueue(name, payload, **kw)

    async def wait_done(
        self, name: str, job_id: str, payload: Any = None, timeout_s: float = 8
    ) -> None:
        async def done() -> bool:
            return await self.client.state(name, job_id, payload) == "done"

        await wait_until(done, timeout_s=timeout_s, what=f"{job_id} done")

    async def wait_dead(self, queue: str, job_id: str, timeout_s: float = 8) -> DeadJob:
        job: DeadJob = await wait_until(
            lambda: self.dlq.find(queue, job_id), timeout_s=timeout_s, what=f"{job_id} dead"
        )
        return job

    def calls(self, peer: str, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.fake.requests(peer, path) if method in (None, r.method)]

    def keys(self, peer: str, path: str) -> list[str | None]:
        return [r.idempotency_key for r in self.calls(peer, path, "POST")]


def attempts(requests: list[RecordedRequest]) -> list[int]:
    """The attempt number of each request, from its `X-Request-Id` (`job id:attempt`)."""
    return [int(r.headers["x-request-id"].rsplit(":", 1)[1]) for r in requests]


def audiences(requests: list[RecordedRequest]) -> set[str]:
    """The `aud` claims of the requests' bearer tokens (checked by the fake as well)."""
    return {
        jwt.decode(r.headers["authorization"][7:], options={"verify_signature": False})["aud"]
        for r in requests
    }


@asynccontextmanager
async def jobs_worker(
    redis_url: str,
    fake: FakePeers,
    jwk_text: str,
    processors: str,
    *,
    clock: Callable[[], float] = time.time,
    **env: Any,
) -> AsyncIterator[JobsHarness]:
    """A worker of the platform's `processors`; `clock` is what handlers' `ctx.now_ms()` reads."""
    settings = make_settings(redis_url, **{**peers_env(fake, jwk_text), **env})
    registry = Registry(PROCESSORS)
    resources, peers = job_resources(registry, settings)
    assert peers is not None
    try:
        async with running_worker(
            settings, registry, processors, resources=resources, clock=clock
        ) as worker:
            peers.use_rate_gate(worker.rates.peer_gate)  # as the launcher wires it
            yield JobsHarness(worker, fake)
    finally:
        await peers.aclose()
