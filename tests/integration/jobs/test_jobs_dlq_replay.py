"""dlq.replay: reviewed dead letters back onto their queue, same ids, bounded rate."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from tests.support.platform_jobs import now_ms
from tests.support.wait import wait_until

from tgworkers.engine import AuditLog
from tgworkers.errors import InputError

SETTLE = "/internal/v1/cfb/settle"


async def _items(audit):
    return (await audit.page(limit=10)).items


def replay_note(job):
    notes = [e for e in job.errors if e["kind"] == "replayed"] if job else []
    return notes[0] if notes else None


async def test_replay_keeps_ids_records_who_at_a_bounded_rate_and_reports_skipped(jobs, fake):
    with capture_logs() as logs:
        async with jobs("cfb.settle,dlq.replay") as h:
            for bet in ("b_1", "b_2"):  # unknown bets: 404, and the peer answers the same again
                await h.enqueue("cfb.settle", {"betId": bet})
                await h.wait_dead("cfb.settle", f"cfb.settle:{bet}")
            ids = ["cfb.settle:b_1", "cfb.settle:b_2", "cfb.settle:gone"]
            payload = {"queue": "cfb.settle", "ids": ids, "ratePerSec": 4, "by": "alice"}
            await h.enqueue("dlq.replay", payload)
            notes = []
            for job_id in ids[:2]:

                async def dead_again(job_id=job_id):
                    return replay_note(await h.dlq.find("cfb.settle", job_id))

                notes.append(await wait_until(dead_again, what=f"{job_id} replayed, dead again"))
    assert [n["message"].split(":")[0] for n in notes] == ["replayed by alice"] * 2
    assert notes[1]["at_ms"] - notes[0]["at_ms"] >= 240  # 4 per second
    keys = [r.idempotency_key for r in h.calls("playhub", SETTLE)]
    assert sorted(keys) == ["cfb.settle:b_1"] * 2 + ["cfb.settle:b_2"] * 2
    (report,) = [e for e in logs if e["event"] == "dlq.replayed"]
    assert (report["requeued"], report["skipped"], report["by"]) == (2, 1, "alice")
    (skipped,) = [e for e in logs if e["event"] == "dlq.replay_skipped"]
    assert skipped["ids"] == ["cfb.settle:gone"]


async def test_replay_all_settles_jobs_that_had_exhausted_their_attempts(jobs, fake):
    with capture_logs() as logs:
        async with jobs("cfb.settle,dlq.replay", MAX_ATTEMPTS_CFB_SETTLE="2") as h:
            fake.state.add_bet("b_1", t_end_ms=now_ms() - 1000)
            fake.fail("playhub", "settle_cfb_bet", status=503, times=2)
            await h.enqueue("cfb.settle", {"betId": "b_1"})
            await h.wait_dead("cfb.settle", "cfb.settle:b_1")
            await h.enqueue("dlq.replay", {"queue": "cfb.settle", "all": True},
                            origin="operator:bob")  # fmt: skip
            await h.wait_done("cfb.settle", "cfb.settle:b_1", {"betId": "b_1"})
            audit = AuditLog(h.worker.redis, h.worker.layout.globals.audit)
            (entry,) = await wait_until(
                lambda: _items(audit), what="the replay in the audit stream"
            )
    assert (entry.via, entry.who, entry.action, entry.target) == (
        "job", "operator:bob", "dlq.requeue", "cfb.settle",
    )  # fmt: skip
    assert entry.details["requeued"] == 1 and entry.details["ids"] == ["cfb.settle:b_1"]
    assert fake.state.get("bets", "b_1")["status"] == "settled"
    assert {r.idempotency_key for r in h.calls("playhub", SETTLE)} == {"cfb.settle:b_1"}
    (report,) = [e for e in logs if e["event"] == "dlq.replayed"]
    assert report["by"] == "operator:bob" and report["ids"] == ["cfb.settle:b_1"]


async def test_replay_payload_needs_ids_or_all_and_a_known_queue(jobs):
    async with jobs("dlq.replay") as h:
        with pytest.raises(InputError, match="ids"):
            await h.enqueue("dlq.replay", {"queue": "cfb.settle"})
        with pytest.raises(InputError, match="ratePerSec"):
            await h.enqueue("dlq.replay", {"queue": "cfb.settle", "all": True, "ratePerSec": 0})
        job = await h.enqueue("dlq.replay", {"queue": "nope", "all": True})
        dead = await h.wait_dead("dlq.replay", job.id)
    assert "nope" in dead.reason
