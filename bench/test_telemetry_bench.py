"""Drain throughput with telemetry off vs on, in one run (issue 9's overhead target).

Three `run` worker processes drain 20,000 no-op jobs each, same Redis, same run:
- **off**: `OTEL_SDK_DISABLED=true`, no providers at all;
- **metrics**: no OTLP endpoint: metrics recorded for `/metrics` only, no spans;
- **on**: `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local OTLP/HTTP sink (answers 200 to
  every export): every job gets a `process` span (child of the enqueuer's `send` span)
  and every instrument records, exported by the real OTLP/HTTP exporters.
Each mode runs twice, interleaved; the best of the two is kept. Prints, never asserts
on time. Run: `pytest bench/test_telemetry_bench.py -m bench -s`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis.asyncio as aredis
from opentelemetry.sdk.trace import TracerProvider
from tests.conftest import make_settings
from tests.support.processes import start_worker

from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.registry import Registry
from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.recorder import Telemetry

pytestmark = pytest.mark.bench
N_JOBS = 20_000
APP = "bench.jobs:PROCESSORS"
QUEUE = "tgworkers.noop"
BASE_ENV = {"CONCURRENCY_TGWORKERS_NOOP": "100", "LOG_LEVEL": "warning"}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).received += 1

    def log_message(self, *args: object) -> None:
        pass

    received = 0


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def enqueue_all(r, registry, settings, *, traced: bool) -> None:
    """Enqueue inside a `send` span when traced, so every job carries a traceparent."""
    tp = TracerProvider() if traced else None
    previous = telemetry.install(Telemetry(tp))
    try:
        client = Client(r, registry, settings)
        await client.enqueue_many([EnqueueRequest(name=QUEUE, payload={}) for _ in range(N_JOBS)])
    finally:
        telemetry.install(previous)
        if tp is not None:
            tp.shutdown()


async def drain_rate(url: str, registry: Registry, env: dict[str, str], *, traced: bool) -> float:
    settings = make_settings(url, CONCURRENCY_TGWORKERS_NOOP=100)
    r = aredis.Redis.from_url(url)
    await r.flushdb()
    control = Control(r, registry, Layout(settings))
    await control.set_paused(QUEUE, paused=True)
    worker = start_worker(url, processors=QUEUE, app=APP, env={**BASE_ENV, **env})
    try:
        await enqueue_all(r, registry, settings, traced=traced)
        while not int(await r.zcard("{tgw}:workers")):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        await control.set_paused(QUEUE, paused=False)
        while int((await r.hget("{tgw:tgworkers.noop:0}:stats", "processed")) or 0) < N_JOBS:
            await asyncio.sleep(0.002)
        return N_JOBS / (time.perf_counter() - t0)
    finally:
        worker.close()
        await r.aclose()


async def test_drain_with_telemetry_off_and_on(redis_server_url):
    url = redis_server_url
    registry = Registry(__import__("bench.jobs", fromlist=["PROCESSORS"]).PROCESSORS)
    rates: dict[str, list[float]] = {"off": [], "metrics": [], "on": []}
    with otlp_sink() as endpoint:
        modes = {
            "off": ({"OTEL_SDK_DISABLED": "true"}, False),
            "metrics": ({}, False),
            "on": ({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                    "OTEL_METRIC_EXPORT_INTERVAL": "1000"}, True),
        }  # fmt: skip
        for _ in range(2):
            for mode, (env, traced) in modes.items():
                rates[mode].append(await drain_rate(url, registry, env, traced=traced))
    best = {mode: max(values) for mode, values in rates.items()}
    print("\n=== telemetry overhead: drain of 20,000 no-op jobs, 1 process, concurrency 100 ===")
    for mode, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{mode:8s} best {best[mode]:9,.0f} jobs/s  = {best[mode] / best['off']:6.1%} of off"
              f"   (runs: {runs})")  # fmt: skip
    print(f"OTLP exports received by the sink: {_Sink.received}")
    print("target: on >= 85 % of off")
