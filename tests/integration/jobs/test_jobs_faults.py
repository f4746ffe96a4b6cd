"""Jobs under the faults of the engine-faults issue: clocks that disagree, peers that decide late."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest
from tests.support.platform_jobs import now_ms
from tests.support.wait import wait_until

PROOF_VERIFY = "/internal/v1/proofs/p_1/verify"


def _clock_behind(behind_s: float) -> Callable[[], float]:
    """The clock of a worker whose host runs `behind_s` behind Redis's."""
    return lambda: time.time() - behind_s


@pytest.mark.promise(13)
async def test_escrow_expire_with_the_worker_clock_behind_redis_runs_a_handful_of_times(jobs, fake):
    # The worker thinks the escrow expires 1.5 s later than Redis does: each run snoozes
    # until expiresAt, which Redis's clock already passed. Without a floor the job was
    # promoted at once, over and over (thousands of runs, each a peer request).
    expires = now_ms() + 200
    fake.state.add_hold("h_1", user_id="buyer", amount=100, currency="TON")
    fake.state.add_escrow("e_1", buyer_id="buyer", seller_id="seller", expires_at_ms=expires,
                          status="open", hold_ids=["h_1"])  # fmt: skip
    async with jobs("escrow", clock=_clock_behind(1.5)) as h:
        await h.enqueue("escrow.expire", {"escrowId": "e_1"})
        await h.wait_done("escrow.expire", "escrow.expire:e_1", {"escrowId": "e_1"}, timeout_s=15)
    reads = h.calls("escrow", "/internal/v1/escrows/e_1", "GET")
    assert 2 <= len(reads) <= 6, f"{len(reads)} runs"
    assert fake.state.get("escrows", "e_1")["status"] == "expired"


async def test_a_proof_campaigns_verifies_on_its_own_after_pending_still_gets_its_claim(jobs, fake):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1",
                         verify={"verdict": "pending", "reason": "checking", "retryAt": None})  # fmt: skip
    async with jobs("campaigns", BACKOFF_DEFAULT_MS="100") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await wait_until(lambda: h.calls("campaigns", PROOF_VERIFY), what="a pending answer")
        # Campaigns finishes the check by itself: verified, with a claim
        fake.state.add_claim("c_1", campaign_id="cmp_1", user_id="u_1", amount=100)
        proof = fake.state.get("proofs", "p_1")
        fake.state.put("proofs", "p_1", {**proof, "status": "verified", "claimId": "c_1"})
        await h.wait_done(
            "campaigns.verify_async", "campaigns.verify_async:p_1", {"proofId": "p_1"}
        )
        await h.wait_done("campaigns.claim", "campaigns.claim:c_1", {"claimId": "c_1"})
    assert fake.state.get("claims", "c_1")["status"] == "rewarded"


@pytest.mark.promise(13)
async def test_a_peer_whose_clock_is_behind_cannot_make_a_job_spin(jobs, fake):
    # Campaigns answers `pending` with a retryAt 2 s in the past (its clock is behind):
    # without the snooze floor the job was promoted again at once, over and over.
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1",
                         verify={"verdict": "pending", "reason": "checking",
                                 "retryAt": now_ms() - 2_000})  # fmt: skip
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await wait_until(lambda: h.calls("campaigns", PROOF_VERIFY), what="a first check")
        await anyio.sleep(2.5)  # the window the checks are counted over
        checks = len(h.calls("campaigns", PROOF_VERIFY))
    assert 1 <= checks <= 4, f"{checks} checks in 2.5 s"
