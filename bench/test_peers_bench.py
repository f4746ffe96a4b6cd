"""Peer calls per second through `PeerClient` vs a bare httpx loop, same server, same run.

Run: `pytest bench/test_peers_bench.py -m bench -s`. Prints, never asserts wall-clock.
The fake peers run in a separate process so they do not share the GIL with the
client; both loops settle distinct bets over keep-alive connections, and the fake
verifies the service JWT on every request in both. Target: PeerClient >= 70 % of bare.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from joserfc.jwk import OKPKey

from tgworkers.peers import PeersConfig, ServiceKey, open_peers

ISSUER = "bench"
CALLS = int(os.environ.get("PEERS_BENCH_CALLS", "3000"))
CONCURRENCY = int(os.environ.get("PEERS_BENCH_CONCURRENCY", "8"))

CLIENT_CPU: list[float] = []  # client process CPU time / wall time, per timed loop

pytestmark = pytest.mark.bench


def _serve(public_jwk: dict[str, Any], bets: int, ports: Any, stop: Any) -> None:
    from tgworkers.devstack.fake_peers import FakePeers

    fake = FakePeers(public_jwk, issuer=ISSUER).start()
    for i in range(bets):
        fake.state.add_bet(f"b_{i}", t_end_ms=1)
    ports.put(fake.port)
    stop.wait()
    fake.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ServiceKey]]:
    # production log level: the per-call `peer.called` debug event is filtered out
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    key = ServiceKey.from_jwk_text(json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True)))
    ctx = multiprocessing.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(key.public_jwk(), 4 * CALLS + 200, ports, stop))
    proc.start()
    port = ports.get(timeout=30)
    yield f"http://127.0.0.1:{port}", key
    stop.set()
    proc.join(10)
    structlog.reset_defaults()


async def _run(calls: int, one: Any) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(calls):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await one(queue.get_nowait())

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall_s = time.perf_counter() - started
    CLIENT_CPU.append((time.process_time() - cpu_started) / wall_s)
    return calls / wall_s


async def _bare(base: str, token: str, offset: int) -> float:
    limits = httpx.Limits(max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base + "/playhub", limits=limits) as http:

        async def one(i: int) -> None:
            bet = f"b_{offset + i}"
            response = await http.post(
                "/internal/v1/cfb/settle",
                content=json.dumps({"betId": bet}).encode(),
                headers={"Authorization": "Bearer " + token, "Idempotency-Key": "cfb.settle:" + bet,
                         "Content-Type": "application/json"},
            )  # fmt: skip
            assert response.status_code == 200

        await _run(50, one)  # warm-up: connections
        return await _run(calls=CALLS, one=one)


async def _through_peer_client(base: str, key: ServiceKey, offset: int) -> float:
    urls = {
        f"{p}_url": f"{base}/{p}" for p in ("playhub", "payhub", "campaigns", "escrow", "discovery")
    }
    config = PeersConfig(**urls, issuer=ISSUER, service_id="bench")
    async with open_peers(config, key) as peers:

        async def one(i: int) -> None:
            bet = f"b_{offset + i}"
            await peers.playhub.settle_cfb_bet(bet, key="cfb.settle:" + bet)

        await _run(50, one)
        return await _run(calls=CALLS, one=one)


async def test_peer_client_calls_per_second_vs_bare_httpx(server: tuple[str, ServiceKey]) -> None:
    base, key = server
    from tgworkers.peers import ServiceTokens

    token = ServiceTokens(key, issuer=ISSUER, subject="bench").token("playhub")
    bare_1 = await _bare(base, token, offset=0)
    client_1 = await _through_peer_client(base, key, offset=CALLS + 50)
    bare_2 = await _bare(base, token, offset=2 * CALLS + 100)
    client_2 = await _through_peer_client(base, key, offset=3 * CALLS + 150)
    bare, client = max(bare_1, bare_2), max(client_1, client_2)
    print(
        f"\npeers bench: {CALLS} settle_cfb_bet calls, concurrency {CONCURRENCY}, fake peers in a separate process"
    )
    print(f"  bare httpx loop : {bare_1:8.0f} / {bare_2:8.0f} calls/s (best {bare:.0f})")
    print(f"  via PeerClient  : {client_1:8.0f} / {client_2:8.0f} calls/s (best {client:.0f})")
    print(f"  ratio           : {client / bare:.0%} (target >= 70%)")
    busy = [f"{c:.0%}" for c in CLIENT_CPU[1::2]]  # the timed loops, not the warm-ups
    print(f"  client CPU busy : {' / '.join(busy)} (bare, client, bare, client)")
    if max(CLIENT_CPU) < 0.9:
        print(
            "  the client process is idle part of the time: the fake server (one uvicorn process,"
        )
        print("  an Ed25519 verify per request) is the bottleneck; absolute rates are the server's")
