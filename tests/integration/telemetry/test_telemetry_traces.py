"""One job run with a retry and a peer call: spans, their relations and the peer's traceparent."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, StatusCode
from tests.conftest import make_settings, running_worker
from tests.support.fake_peers import peers_config
from tests.support.platform_jobs import ISSUER
from tests.support.telemetry_jobs import PROCESSORS
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.context import Resources
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP
from tgworkers.peers import ServiceKey, open_peers

INVARIANTS = "/internal/v1/ledger/invariants"


def hexid(n: int, width: int) -> str:
    return format(n, f"0{width}x")


async def run_job_with_retry(otel, redis, redis_url, fake, jwk_text):
    settings = make_settings(redis_url)
    registry = Registry(PROCESSORS)
    config = peers_config(fake, issuer=ISSUER)
    async with (
        open_peers(config, ServiceKey.from_jwk_text(jwk_text)) as peers,
        running_worker(settings, registry, "telemetry.call_peer", resources=Resources(peers)),
    ):
        client = Client(redis, registry, settings)
        tracer = otel.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("test.request"):
            result = await client.enqueue("telemetry.call_peer", {}, id="job-1")

        async def done() -> bool:
            return await client.state("telemetry.call_peer", "job-1") == "done"

        await wait_until(done, what="job done on its second attempt")
        await wait_until(lambda: len(otel.spans()) >= 6, what="spans")
    return result


async def test_send_process_and_peer_spans_with_parent_link_and_continuous_trace(
    otel, redis, redis_url, fake, jwk_text
):
    result = await run_job_with_retry(otel, redis, redis_url, fake, jwk_text)
    spans = otel.spans()
    by_name: dict[str, list[Any]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    (root,) = by_name["test.request"]
    (send,) = by_name["send telemetry.call_peer"]
    first, second = sorted(by_name["process telemetry.call_peer"],
                           key=lambda s: s.attributes["tgworkers.job.attempt"])  # fmt: skip
    peer_calls = sorted(by_name["GET payhub"], key=lambda s: s.start_time)

    check_send(send, root)
    check_first(first, send, root, result.id)
    check_retry(second, first, send, root)
    check_peers(peer_calls, first, second, root, fake)


def check_send(send, root) -> None:
    assert send.kind is SpanKind.PRODUCER and send.parent.span_id == root.context.span_id
    assert send.attributes["messaging.system"] == "redis"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == "telemetry.call_peer"
    assert send.attributes["messaging.batch.message_count"] == 1


def check_first(first, send, root, job_id) -> None:
    """First delivery: child of the enqueuer and linked to it; same trace."""
    assert first.kind is SpanKind.CONSUMER
    assert first.parent is not None and first.parent.span_id == send.context.span_id
    assert first.context.trace_id == root.context.trace_id
    assert [link.context.span_id for link in first.links] == [send.context.span_id]
    attrs = first.attributes
    assert attrs["messaging.operation.name"] == "process"
    assert attrs["messaging.operation.type"] == "process"
    assert attrs["messaging.consumer.group.name"] == GROUP
    assert attrs["messaging.destination.name"] == "telemetry.call_peer"
    assert attrs["tgworkers.job.name"] == "telemetry.call_peer"
    assert attrs["tgworkers.job.id"] == job_id == "job-1"
    assert attrs["tgworkers.job.attempt"] == 1
    assert "-" in attrs["messaging.message.id"]  # the stream entry id
    assert first.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "RuntimeError"


def check_retry(second, first, send, root) -> None:
    """The retry: a new root linked to the enqueuer, not its child."""
    assert second.parent is None and second.context.trace_id != root.context.trace_id
    assert [link.context.span_id for link in second.links] == [send.context.span_id]
    assert second.attributes["tgworkers.job.attempt"] == 2
    assert second.status.status_code is not StatusCode.ERROR
    assert "error.type" not in second.attributes
    assert second.attributes["messaging.message.id"] != first.attributes["messaging.message.id"]


def check_peers(peer_calls, first, second, root, fake) -> None:
    """Peer calls: CLIENT children of each run; the peer got the job's trace."""
    assert [p.kind for p in peer_calls] == [SpanKind.CLIENT, SpanKind.CLIENT]
    assert [p.parent.span_id for p in peer_calls] == [first.context.span_id,
                                                      second.context.span_id]  # fmt: skip
    assert peer_calls[0].attributes["http.response.status_code"] == 200
    assert peer_calls[0].attributes["tgworkers.peer.name"] == "payhub"
    assert peer_calls[0].attributes["tgworkers.peer.outcome"] == "success"
    received = [r.headers["traceparent"] for r in fake.requests("payhub", INVARIANTS)]
    trace_id, parent_id = received[0].split("-")[1:3]
    assert trace_id == hexid(root.context.trace_id, 32)
    assert parent_id == hexid(peer_calls[0].context.span_id, 16)
    assert received[1].split("-")[2] == hexid(peer_calls[1].context.span_id, 16)
