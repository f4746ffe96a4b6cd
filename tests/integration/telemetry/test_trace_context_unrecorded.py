"""Every peer request carries the job's trace context, also when no span is recorded.

contracts/peers.md: "every request carries W3C `traceparent` … of the job's span".
With no OTLP endpoint (no tracer provider) and above the `process` span budget the
run records nothing, yet the peer must still get a valid `traceparent` whose trace
id is the enqueuer's, so traces join across services.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags
from redis.asyncio import Redis
from tests.conftest import make_settings, running_worker
from tests.support.fake_peers import peers_config
from tests.support.platform_jobs import ISSUER
from tests.support.telemetry_jobs import PROCESSORS
from tests.support.wait import wait_until

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.engine.client import Client
from tgworkers.engine.context import Resources
from tgworkers.engine.registry import Registry
from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.recorder import RateBudget, Telemetry
from tgworkers.peers import ServiceKey, open_peers

INVARIANTS = "/internal/v1/ledger/invariants"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
ENQUEUER = SpanContext(
    trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)  # fmt: skip


@pytest.fixture
def no_exporter() -> Iterator[Telemetry]:
    """What `run` installs when no `OTEL_EXPORTER_OTLP_*ENDPOINT` is set: no tracer."""
    previous = telemetry.install(Telemetry())
    try:
        yield telemetry.active()
    finally:
        telemetry.install(previous)


@pytest.fixture
def over_budget() -> Iterator[InMemorySpanExporter]:
    """A tracer whose `process` span budget is spent: every run goes unrecorded."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spent = Telemetry(provider)
    spent._spans = RateBudget(0)  # the budget, exhausted
    previous = telemetry.install(spent)
    try:
        yield exporter
    finally:
        telemetry.install(previous)
        provider.shutdown()


async def _peer_traceparents(
    redis: Redis, redis_url: str, fake: FakePeers, jwk_text: str, job_id: str
) -> list[str]:
    """Enqueue under the enqueuer's context; the job calls Payhub on both attempts."""
    settings = make_settings(redis_url)
    registry = Registry(PROCESSORS)
    config = peers_config(fake, issuer=ISSUER)
    async with (
        open_peers(config, ServiceKey.from_jwk_text(jwk_text)) as peers,
        running_worker(settings, registry, "telemetry.call_peer", resources=Resources(peers)),
    ):
        client = Client(redis, registry, settings)
        with trace.use_span(trace.NonRecordingSpan(ENQUEUER)):
            await client.enqueue("telemetry.call_peer", {}, id=job_id)

        async def done() -> bool:
            return await client.state("telemetry.call_peer", job_id) == "done"

        await wait_until(done, what="job done on its second attempt")
    return [r.headers.get("traceparent", "") for r in fake.requests("payhub", INVARIANTS)]


def _check_joined(received: list[str]) -> None:
    assert len(received) == 2, received  # the failed first attempt and the retry
    matches = [TRACEPARENT.match(header) for header in received]
    assert all(matches), received
    trace_ids = {m.group(1) for m in matches if m}
    span_ids = [m.group(2) for m in matches if m]
    assert trace_ids == {format(ENQUEUER.trace_id, "032x")}
    assert format(ENQUEUER.span_id, "016x") not in span_ids  # a fresh span id per run
    assert len(set(span_ids)) == 2 and "0" * 16 not in span_ids


async def test_without_an_exporter_peer_requests_carry_the_enqueuers_trace(
    no_exporter: Telemetry, redis: Redis, redis_url: str, fake: FakePeers, jwk_text: str
) -> None:
    _check_joined(await _peer_traceparents(redis, redis_url, fake, jwk_text, "job-no-otlp"))


async def test_above_the_span_budget_peer_requests_still_carry_the_trace(
    over_budget: InMemorySpanExporter,
    redis: Redis,
    redis_url: str,
    fake: FakePeers,
    jwk_text: str,
) -> None:
    _check_joined(await _peer_traceparents(redis, redis_url, fake, jwk_text, "job-over-budget"))
    recorded = [span.name for span in over_budget.get_finished_spans()]
    assert recorded == ["send telemetry.call_peer"]  # neither the runs nor their peer calls
