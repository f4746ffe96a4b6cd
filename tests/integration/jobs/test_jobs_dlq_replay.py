"""dlq.replay: reviewed dead letters back onto their queue, same ids, bounded rate."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from tests.integration.jobs.jobs_support import now_ms
from tests.support.wait import wait_until

from tgworkers.errors import InputError

SETTLE = "/internal/v1/cfb/settle"


async def dead_bets(h, *bets: str) -> None:
    """Bets whose settle jobs exhausted their attempts on 503s (answers a peer does not replay)."""
    for bet in bets:
        h.fake.state.add_bet(bet, t_end_ms=now_ms() - 1000)
    h.fake.fail("playhub", "settle_cfb_bet", status=503, times=2 * len(bets))
    for bet in bets:
        await h.enqueue("cfb.settle", {"betId": bet})
    for bet in bets:
        await h.wait_dead("cfb.settle", f"cfb.settle:{bet}")


async def test_replay_keeps_ids_and_keys_at_a_bounded_rate_and_reports_skipped(jobs, fake):
    with capture_logs() as logs:
        async with jobs("cfb.settle,dlq.replay", MAX_ATTEMPTS_CFB_SETTLE="2") as h:
            await dead_bets(h, "b_1", "b_2")
            ids = ["cfb.settle:b_1", "cfb.settle:b_2", "cfb.settle:gone"]
            payload = {"queue": "cfb.settle", "ids": ids, "ratePerSec": 4, "by": "alice"}
            replay = await h.enqueue("dlq.replay", payload)
            for bet in ("b_1", "b_2"):
                await h.wait_done("cfb.settle", f"cfb.settle:{bet}", {"betId": bet})
            await wait_until(lambda: [e for e in logs if e["event"] == "dlq.replayed"])
    assert replay.created
    assert await h.dlq.count("cfb.settle") == 0
    first, second = h.calls("playhub", SETTLE)[4:]
    assert [first.idempotency_key, second.idempotency_key] == ["cfb.settle:b_1", "cfb.settle:b_2"]
    assert second.received_s - first.received_s >= 0.2  # 4 per second
    (report,) = [e for e in logs if e["event"] == "dlq.replayed"]
    assert (report["requeued"], report["skipped"], report["by"]) == (2, 1, "alice")
    (skipped,) = [e for e in logs if e["event"] == "dlq.replay_skipped"]
    assert skipped["ids"] == ["cfb.settle:gone"]


async def test_replay_records_who_replayed_in_the_jobs_history(jobs, fake):
    async with jobs("cfb.settle,dlq.replay") as h:
        await h.enqueue("cfb.settle", {"betId": "b_1"})  # unknown bet: 404, replayed by the peer
        await h.wait_dead("cfb.settle", "cfb.settle:b_1")
        await h.enqueue("dlq.replay", {"queue": "cfb.settle", "all": True},
                        origin="operator:bob")  # fmt: skip

        async def replayed_and_dead_again():
            job = await h.dlq.find("cfb.settle", "cfb.settle:b_1")
            return job if job and any(e["kind"] == "replayed" for e in job.errors) else None

        job = await wait_until(replayed_and_dead_again, what="replayed, dead again")
    (note,) = [e for e in job.errors if e["kind"] == "replayed"]
    assert note["message"] == "replayed by operator:bob"
    assert job.id == "cfb.settle:b_1"
    assert [r.idempotency_key for r in h.calls("playhub", SETTLE)] == ["cfb.settle:b_1"] * 2


async def test_replay_payload_needs_ids_or_all_and_a_known_queue(jobs):
    async with jobs("dlq.replay") as h:
        with pytest.raises(InputError, match="ids"):
            await h.enqueue("dlq.replay", {"queue": "cfb.settle"})
        with pytest.raises(InputError, match="ratePerSec"):
            await h.enqueue("dlq.replay", {"queue": "cfb.settle", "all": True, "ratePerSec": 0})
        job = await h.enqueue("dlq.replay", {"queue": "nope", "all": True})
        dead = await h.wait_dead("dlq.replay", job.id)
    assert "nope" in dead.reason
