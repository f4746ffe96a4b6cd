"""Each failure kind of the answer table surfaces as the right error class, over loopback."""

from __future__ import annotations

import json
import socket

import pytest
from joserfc.jwk import OKPKey
from opentelemetry.sdk.trace import TracerProvider
from tests.support.fake_peers import peers_config

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.engine import RetryLater
from tgworkers.peers import (
    PeerAuthError,
    PeerConnectionError,
    Peers,
    PeerTimeoutError,
    PeerTransientError,
    PeerUnexpectedError,
    ServiceKey,
    auth_rejected_hooks,
    open_peers,
    request_id_var,
)


@pytest.fixture
def bet(fake_peers: FakePeers) -> str:
    fake_peers.state.add_bet("b_1", t_end_ms=1)
    return "b_1"


async def test_503_twice_then_success_with_the_same_key_and_a_token_each_time(
    peers: Peers, fake_peers: FakePeers, bet: str
) -> None:
    fake_peers.fail("playhub", "settle_cfb_bet", status=503, times=2, retry_after="7")
    for _ in range(2):
        with pytest.raises(PeerTransientError) as caught:
            await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:b_1")
        assert isinstance(caught.value, RetryLater)
        assert (caught.value.status, caught.value.after_ms) == (503, 7000)
    settled = await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:b_1")
    assert settled.status == "settled"
    sent = fake_peers.requests("playhub")
    assert [r.idempotency_key for r in sent] == ["cfb.settle:b_1"] * 3
    assert all((r.authorization or "").startswith("Bearer ey") for r in sent)


async def test_retry_after_as_an_http_date_becomes_after_ms(
    peers: Peers, fake_peers: FakePeers, bet: str
) -> None:
    fake_peers.fail("playhub", status=429, retry_after="soon")  # neither seconds nor a date
    with pytest.raises(PeerTransientError) as caught:
        await peers.playhub.settle_cfb_bet(bet, key="k")
    assert (caught.value.status, caught.value.after_ms) == (429, None)
    fake_peers.fail("playhub", status=503, retry_after="Fri, 01 Jan 2100 00:00:00 GMT")
    with pytest.raises(PeerTransientError) as caught:
        await peers.playhub.settle_cfb_bet(bet, key="k")
    assert caught.value.after_ms is not None
    assert caught.value.after_ms > 365 * 24 * 3600 * 1000


async def test_a_token_signed_by_another_key_is_refused_as_auth_error(
    fake_peers: FakePeers, bet: str
) -> None:
    other = ServiceKey.from_jwk_text(
        json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))
    )
    seen: list[tuple[str, int]] = []
    auth_rejected_hooks.append(lambda peer, status: seen.append((peer, status)))
    try:
        async with open_peers(peers_config(fake_peers), other) as peers:
            with pytest.raises(PeerAuthError) as caught:
                await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:b_1")
            assert peers.playhub.auth_rejected == 1
    finally:
        auth_rejected_hooks.clear()
    assert isinstance(caught.value, RetryLater)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert seen == [("playhub", 401)]
    assert fake_peers.state.get("bets", bet)["status"] == "open"


async def test_403_is_an_auth_error(peers: Peers, fake_peers: FakePeers) -> None:
    fake_peers.fail("discovery", status=403, body={"code": "forbidden"})
    with pytest.raises(PeerAuthError) as caught:
        await peers.discovery.check_member("ch_1", "u_1")
    assert (caught.value.status, caught.value.code) == (403, "forbidden")


async def test_a_hanging_peer_times_out_as_transient(
    fake_peers: FakePeers, service_key: ServiceKey
) -> None:
    fake_peers.hang("payhub", "ledger_invariants", hang_s=10)
    async with open_peers(peers_config(fake_peers, total_s=0.3), service_key) as peers:
        with pytest.raises(PeerTimeoutError) as caught:
            await peers.payhub.ledger_invariants()
    assert isinstance(caught.value, PeerTransientError)
    assert caught.value.after_ms is None


async def test_a_slow_answer_within_the_deadline_succeeds(
    peers: Peers, fake_peers: FakePeers
) -> None:
    fake_peers.delay("payhub", "ledger_invariants", delay_s=0.2)
    assert (await peers.payhub.ledger_invariants()).ok is True


async def test_a_reset_connection_is_transient(
    peers: Peers, fake_peers: FakePeers, bet: str
) -> None:
    fake_peers.reset_connection("playhub", "settle_cfb_bet")
    with pytest.raises(PeerConnectionError):
        await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:b_1")
    assert (await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:b_1")).status == "settled"


async def test_a_refused_connection_is_transient(
    fake_peers: FakePeers, service_key: ServiceKey
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{sock.getsockname()[1]}/payhub"
    async with open_peers(peers_config(fake_peers, payhub_url=closed_url), service_key) as peers:
        with pytest.raises(PeerConnectionError):
            await peers.payhub.ledger_invariants()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"not json"),
        (200, b'{"ok": "yes"}'),
        (418, b'{"code": "teapot"}'),
        (409, b'{"code": "mystery"}'),
    ],
)
async def test_answers_outside_the_contract_are_unexpected_and_retried(
    peers: Peers, fake_peers: FakePeers, status: int, body: bytes
) -> None:
    fake_peers.fail("payhub", "ledger_invariants", status=status, body=body)
    with pytest.raises(PeerUnexpectedError) as caught:
        await peers.payhub.ledger_invariants()
    assert isinstance(caught.value, RetryLater)


async def test_an_answer_over_the_body_cap_is_refused(
    fake_peers: FakePeers, service_key: ServiceKey
) -> None:
    fake_peers.fail("payhub", "ledger_invariants", status=200, body=b"x" * 70_000)
    config = peers_config(fake_peers, max_body_bytes=64 * 1024)
    async with open_peers(config, service_key) as peers:
        with pytest.raises(PeerUnexpectedError, match="over 65536 bytes"):
            await peers.payhub.ledger_invariants()


async def test_request_id_trace_context_and_user_agent_headers(
    peers: Peers, fake_peers: FakePeers
) -> None:
    tracer = TracerProvider().get_tracer("test")
    token = request_id_var.set("job-1:3")
    try:
        with tracer.start_as_current_span("job") as span:
            await peers.payhub.ledger_invariants()
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        request_id_var.reset(token)
    await peers.payhub.ledger_invariants()
    first, second = fake_peers.requests("payhub")
    assert first.headers["x-request-id"] == "job-1:3"
    assert first.headers["traceparent"].split("-")[1] == trace_id
    assert first.headers["user-agent"] == "tgworkers/0.1.0"
    assert second.headers["x-request-id"] not in ("", "job-1:3")  # a fresh random id
    assert "traceparent" not in second.headers
