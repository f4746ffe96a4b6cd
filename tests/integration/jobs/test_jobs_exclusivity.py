"""Escrow jobs of one escrow never run at the same time, across worker processes."""

from __future__ import annotations

from collections import defaultdict

from tests.support.platform_jobs import now_ms, peers_env
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS

DELAY_S = 0.25
ESCROWS = [f"e_{i}" for i in range(4)]


def job_of(request) -> str:
    return request.headers["x-request-id"].rsplit(":", 1)[0]


def runs_per_escrow(fake) -> dict[str, list[tuple[str, float, float]]]:
    """Per escrow: (job id, first request received, last request received), in time order."""
    spans: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in fake.requests():
        job = job_of(r)
        spans[job.split(":")[1]][job].append(r.received_s)
    return {
        escrow: sorted(((job, min(t), max(t)) for job, t in jobs.items()), key=lambda s: s[1])
        for escrow, jobs in spans.items()
    }


async def test_three_workers_never_run_two_jobs_of_one_escrow_at_once(
    fake, jwk_text, redis, redis_url, settings
):
    for escrow in ESCROWS:
        fake.state.add_hold(f"{escrow}_h", user_id="buyer", amount=100)
        fake.state.add_escrow(escrow, buyer_id="buyer", seller_id="seller",
                              expires_at_ms=now_ms() - 1000, hold_ids=[f"{escrow}_h"])  # fmt: skip
    fake.delay(None, None, delay_s=DELAY_S, times=None)  # every call is slow
    client = Client(redis, Registry(PROCESSORS), settings)
    for escrow in ESCROWS:
        await client.enqueue("escrow.expire", {"escrowId": escrow})
        await client.enqueue("escrow.adjudicate",
                             {"escrowId": escrow, "decision": "refund", "moderatorId": "m"})  # fmt: skip
    env = peers_env(fake, jwk_text)
    workers = [
        start_worker(redis_url, processors="escrow", app="tgworkers.jobs:PROCESSORS", env=env)
        for _ in range(3)
    ]
    try:
        await wait_until(lambda: _all_done(client), timeout_s=15, what="every escrow job done")
    finally:
        for w in workers:
            w.close()
    runs = runs_per_escrow(fake)
    assert sorted(runs) == ESCROWS
    for escrow, spans in runs.items():
        assert len(spans) == 2, spans
        (_, _, first_last), (_, second_first, _) = spans
        # the second job's first call came after the first job's last answer
        assert second_first >= first_last + DELAY_S * 0.9, (escrow, spans)
    spans = [(e, first, last) for e, ss in runs.items() for _, first, last in ss]
    assert any(  # different escrows did run side by side
        e1 != e2 and f1 < l2 and f2 < l1 for e1, f1, l1 in spans for e2, f2, l2 in spans
    )


async def _all_done(client: Client) -> bool:
    jobs = ("escrow.expire", "escrow.adjudicate")
    return all([await _done(client, job, escrow) for escrow in ESCROWS for job in jobs])


async def _done(client: Client, job: str, escrow: str) -> bool:
    payload = {"escrowId": escrow}  # the partition key is all `state` needs from the payload
    if job == "escrow.adjudicate":
        payload = {**payload, "decision": "refund", "moderatorId": "m"}
    return await client.state(job, f"{job}:{escrow}", payload) == "done"
