"""The realistic job: `cfb.settle` over HTTP to the fake PlayHub, against a bare httpx loop.

Both settle distinct bets on the same fake peers server (a separate process, so it does
not share the GIL with the client; it verifies the Ed25519 service JWT on every request),
at the same concurrency (16, `cfb.settle`'s default). tgworkers: the real `run` command
with the platform's `cfb.settle` processor, N jobs enqueued into a paused queue, the queue
resumed and timed until every partition's `processed` counter adds up to N; its CPU per job
from /proc, Redis CPU and commands per job from INFO. Bare: the same POSTs in a loop in
this process, its CPU from `time.process_time`. Interleaved, bare first.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import redis
import redis.asyncio as aredis
from joserfc.jwk import OKPKey

from bench.peers.cost import Meter
from bench.peers.driver import ROOT
from bench.peers.report import DASH
from tgworkers.config import load_settings
from tgworkers.devstack.redis import RedisServer
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS
from tgworkers.jobs.cfb import CFB_SETTLE
from tgworkers.peers import ServiceKey, ServiceTokens

ISSUER = "bench"
CALLS = int(os.environ.get("REALISTIC_JOBS", "2000"))
CONCURRENCY = 16
QUEUE = "cfb.settle"


def _serve(public_jwk: dict[str, Any], bets: int, ports: Any, stop: Any) -> None:
    from tgworkers.devstack.fake_peers import FakePeers

    fake = FakePeers(public_jwk, issuer=ISSUER).start()
    for i in range(bets):
        fake.state.add_bet(f"b_{i}", t_end_ms=1)
    ports.put(fake.port)
    stop.wait()
    fake.stop()


async def bare(base: str, token: str, bets: range) -> tuple[float, float]:
    """(calls/s, client CPU µs per call) of a plain httpx loop doing what the job does."""
    todo = iter(bets)
    limits = httpx.Limits(max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base + "/playhub", limits=limits) as http:

        async def lane() -> None:
            for i in todo:
                r = await http.post(
                    "/internal/v1/cfb/settle",
                    content=json.dumps({"betId": f"b_{i}"}).encode(),
                    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json",
                             "Idempotency-Key": f"cfb.settle:b_{i}"},
                )  # fmt: skip
                r.raise_for_status()

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return len(bets) / wall, cpu / len(bets) * 1e6


class Tgworkers:
    def __init__(self, redis_url: str, env: dict[str, str]) -> None:
        self.url, self.env = redis_url, env
        self.settings = load_settings({"REDIS_URL": redis_url, **env})
        self.registry = Registry(PROCESSORS)
        self.keys = Layout(self.settings).partitions(CFB_SETTLE)

    async def _processed(self, r: aredis.Redis) -> int:
        counts = [await r.hget(k.stats, "processed") for k in self.keys]
        return sum(int(c or 0) for c in counts)

    async def run(self, bets: range) -> tuple[float, float, float, float]:
        """(jobs/s, worker CPU µs, Redis CPU µs, Redis commands) per job."""
        r = aredis.Redis.from_url(self.url)
        await r.flushall()
        control = Control(r, self.registry, Layout(self.settings))
        await control.set_paused(QUEUE, paused=True)
        client = Client(r, self.registry, self.settings)
        await client.enqueue_many(
            EnqueueRequest(name=QUEUE, payload={"betId": f"b_{i}"}) for i in bets
        )
        env = {**os.environ, **self.env, "REDIS_URL": self.url, "PYTHONPATH": str(ROOT),
               "LOG_LEVEL": "warning", "LOG_FORMAT": "json"}  # fmt: skip
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
            [sys.executable, "-m", "tgworkers", "run", "--processors", QUEUE],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not await r.zcard("{tgw}:workers"):
                if worker.poll() is not None:
                    raise RuntimeError("the cfb.settle worker exited at start-up")
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            meter = Meter(redis.Redis.from_url(self.url), [worker.pid])
            t0 = time.perf_counter()
            await control.set_paused(QUEUE, paused=False)
            while await self._processed(r) < len(bets):
                await asyncio.sleep(0.005)
            rate = len(bets) / (time.perf_counter() - t0)
            cost = meter.read(len(bets))
        finally:
            worker.kill()
            worker.wait(10)
            await r.aclose()
        return rate, cost.process_us, cost.redis_us, cost.commands


def _cell(values: list[float], fmt: str = ",.0f") -> str:
    med = statistics.median(values)
    return f"{med:{fmt}} ({min(values):{fmt}}{DASH}{max(values):{fmt}})"


def main(rounds: int) -> None:
    jwk_text = json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))
    key = ServiceKey.from_jwk_text(jwk_text)
    ctx = multiprocessing.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(key.public_jwk(), 2 * rounds * CALLS, ports, stop))
    server.start()
    redis_server = RedisServer()
    try:
        redis_server.start()
        base = f"http://127.0.0.1:{ports.get(timeout=60)}"
        env = {f"SVC_{p.upper()}_URL": f"{base}/{p}"
               for p in ("playhub", "payhub", "campaigns", "escrow", "discovery")}  # fmt: skip
        env |= {"SERVICE_JWT_PRIVATE_JWK": jwk_text, "SERVICE_JWT_ISSUER": ISSUER,
                "CRON_CFB_SETTLE_SWEEP": "0 0 1 1 *"}  # fmt: skip
        token = ServiceTokens(key, issuer=ISSUER, subject="tgworkers").token("playhub")
        tgw = Tgworkers(redis_server.url, env)
        rows: dict[str, list[float]] = {
            k: [] for k in ("bare", "bare_us", "tgw", "tgw_us", "redis_us", "cmds")
        }
        for i in range(rounds):
            offset = 2 * i * CALLS
            b, b_us = asyncio.run(bare(base, token, range(offset, offset + CALLS)))
            t, t_us, r_us, cmds = asyncio.run(tgw.run(range(offset + CALLS, offset + 2 * CALLS)))
            for k, v in zip(rows, (b, b_us, t, t_us, r_us, cmds), strict=True):
                rows[k].append(v)
    finally:
        stop.set()
        server.join(10)
        redis_server.close()
    ratio = [t / b for t, b in zip(rows["tgw"], rows["bare"], strict=True)]
    print(f"\n=== realistic job: cfb.settle over HTTP to the fake PlayHub, {CALLS} per run, "
          f"concurrency {CONCURRENCY}, {rounds} round(s) ===\n")  # fmt: skip
    print(
        "| | jobs (calls)/s | client/worker CPU µs per job | Redis CPU µs/job | Redis commands/job |"
    )
    print("|---|---|---|---|---|")
    print(f"| bare httpx loop | {_cell(rows['bare'])} | {_cell(rows['bare_us'])} | — | — |")
    print(f"| tgworkers `cfb.settle` | {_cell(rows['tgw'])} | {_cell(rows['tgw_us'])} "
          f"| {_cell(rows['redis_us'], ',.1f')} | {_cell(rows['cmds'], ',.2f')} |")  # fmt: skip
    print(f"\ntgworkers / bare: {_cell([100 * x for x in ratio], '.0f')} % (target >= 70 %)")
