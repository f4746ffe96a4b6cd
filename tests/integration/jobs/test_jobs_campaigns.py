"""campaigns.verify_async and campaigns.claim against real Redis and the fake peers."""

from __future__ import annotations

from tests.support.platform_jobs import attempts, audiences, now_ms
from tests.support.wait import wait_until

PROOF = "/internal/v1/proofs/p_1"
VERIFY = "/internal/v1/proofs/p_1/verify"
VERDICT = "/internal/v1/proofs/p_1/verdict"
REWARDS = "/internal/v1/rewards"


def claim_id_of(fake) -> str:
    return fake.state.get("proofs", "p_1")["claimId"]


async def test_channel_join_member_is_verified_via_discovery_and_its_claim_rewarded(jobs, fake):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1", kind="channel_join",
                         channel_id="ch_1")  # fmt: skip
    fake.state.set_member("ch_1", "u_1")
    async with jobs("campaigns") as h:
        result = await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await h.wait_done("campaigns.verify_async", result.id, {"proofId": "p_1"})
        claim_id = claim_id_of(fake)
        await h.wait_done("campaigns.claim", f"campaigns.claim:{claim_id}", {"claimId": claim_id})
    assert result.id == "campaigns.verify_async:p_1"
    (member,) = h.calls("discovery", "/internal/v1/channels/ch_1/members/u_1")
    assert audiences([member]) == {"discovery"}
    (verdict,) = h.calls("campaigns", VERDICT)
    assert verdict.body == {"verdict": "verified", "reason": "member of the channel"}
    assert verdict.idempotency_key == "campaigns.verify_async:p_1:verdict"
    assert h.calls("campaigns", VERIFY) == []
    (reward,) = h.calls("payhub", REWARDS)
    assert reward.idempotency_key == f"claim:{claim_id}"
    assert reward.body == {"rewardId": f"claim:{claim_id}", "userId": "u_1", "amount": 100,
                           "currency": "STARS", "reference": {"kind": "campaign", "id": "cmp_1"}}  # fmt: skip
    (receipt,) = h.calls("campaigns", f"/internal/v1/claims/{claim_id}/receipt")
    assert receipt.idempotency_key == f"campaigns.claim:{claim_id}:receipt"
    assert receipt.body["rewardId"] == f"claim:{claim_id}"
    assert abs(receipt.body["issuedAt"] - now_ms()) < 10_000
    assert fake.state.get("claims", claim_id)["status"] == "rewarded"


async def test_channel_join_non_member_is_rejected_and_nothing_is_claimed(jobs, fake):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1", kind="channel_join",
                         channel_id="ch_1")  # fmt: skip
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await h.wait_done(
            "campaigns.verify_async", "campaigns.verify_async:p_1", {"proofId": "p_1"}
        )
    (verdict,) = h.calls("campaigns", VERDICT)
    assert verdict.body["verdict"] == "rejected"
    assert claim_id_of(fake) is None and h.calls("payhub", REWARDS) == []


async def test_external_proof_pending_runs_again_without_spending_attempts_then_verified(
    jobs, fake
):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1",
                         verify={"verdict": "pending", "reason": "checking", "retryAt": None})  # fmt: skip
    async with jobs("campaigns", BACKOFF_DEFAULT_MS="100") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await wait_until(lambda: len(h.calls("campaigns", VERIFY)) >= 2, what="two checks")
        proof = fake.state.get("proofs", "p_1")
        fake.state.put("proofs", "p_1", {**proof, "_verify": {"verdict": "verified"}})
        await h.wait_done(
            "campaigns.verify_async", "campaigns.verify_async:p_1", {"proofId": "p_1"}
        )
        claim_id = claim_id_of(fake)
        await h.wait_done("campaigns.claim", f"campaigns.claim:{claim_id}", {"claimId": claim_id})
    checks = h.calls("campaigns", VERIFY)
    assert set(attempts(checks)) == {1}
    assert {c.idempotency_key for c in checks} == {"campaigns.verify_async:p_1:verify"}
    assert len(h.calls("payhub", REWARDS)) == 1


async def test_pending_until_the_deadline_is_dead_lettered(jobs, fake):
    retry_at = now_ms() + 400
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1",
                         verify={"verdict": "pending", "reason": "checking", "retryAt": retry_at})  # fmt: skip
    async with jobs(
        "campaigns",
        CAMPAIGN_PROOF_DEADLINE_MS="1500",
        BACKOFF_DEFAULT_MS="200",
        BACKOFF_MAX_MS="400",
    ) as h:
        started = now_ms()
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        dead = await h.wait_dead("campaigns", "campaigns.verify_async:p_1")
    assert "pending" in dead.reason and "deadline" in dead.reason
    assert now_ms() - started >= 1500
    checks = h.calls("campaigns", VERIFY)
    assert len(checks) >= 3 and set(attempts(checks)) == {1}
    assert checks[1].received_s * 1000 >= retry_at  # the first re-check waited for retryAt


async def test_verified_without_auto_claim_enqueues_nothing(jobs, fake):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1", auto_claim=False)
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await h.wait_done(
            "campaigns.verify_async", "campaigns.verify_async:p_1", {"proofId": "p_1"}
        )
    assert fake.state.get("proofs", "p_1")["status"] == "verified"
    assert h.calls("payhub", REWARDS) == []


async def test_already_decided_proof_is_done_without_a_change(jobs, fake):
    fake.state.add_proof("p_1", campaign_id="cmp_1", user_id="u_1", status="rejected")
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_1"})
        await h.wait_done(
            "campaigns.verify_async", "campaigns.verify_async:p_1", {"proofId": "p_1"}
        )
    assert [r.method for r in fake.requests()] == ["GET"]


async def test_unknown_proof_is_dead_lettered_at_once(jobs, fake):
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.verify_async", {"proofId": "p_404"})
        dead = await h.wait_dead("campaigns", "campaigns.verify_async:p_404")
    assert "404" in dead.reason


async def test_claim_issues_the_reward_and_records_the_receipt(jobs, fake):
    fake.state.add_claim("c_1", campaign_id="cmp_1", user_id="u_1", amount=250)
    fake.fail("payhub", "issue_reward", status=503, times=1)
    async with jobs("campaigns") as h:
        result = await h.enqueue("campaigns.claim", {"claimId": "c_1"})
        await h.wait_done("campaigns.claim", result.id, {"claimId": "c_1"})
    assert result.id == "campaigns.claim:c_1"
    rewards = h.calls("payhub", REWARDS)
    assert [r.idempotency_key for r in rewards] == ["claim:c_1", "claim:c_1"]
    assert rewards[1].body["amount"] == 250
    assert h.keys("campaigns", "/internal/v1/claims/c_1/receipt") == ["campaigns.claim:c_1:receipt"]


async def test_claim_receipt_already_done_counts_as_done(jobs, fake):
    fake.state.add_claim("c_1", campaign_id="cmp_1", user_id="u_1", amount=250)
    fake.fail("campaigns", "record_claim_receipt", status=409, body={"code": "already_done"})
    async with jobs("campaigns") as h:
        await h.enqueue("campaigns.claim", {"claimId": "c_1"})
        await h.wait_done("campaigns.claim", "campaigns.claim:c_1", {"claimId": "c_1"})
    assert len(h.calls("campaigns", "/internal/v1/claims/c_1/receipt")) == 1


async def test_rewarded_or_rejected_claims_are_done_without_a_change(jobs, fake):
    fake.state.add_claim("c_1", campaign_id="cmp_1", user_id="u_1", amount=1, status="rewarded")
    fake.state.add_claim("c_2", campaign_id="cmp_1", user_id="u_1", amount=1, status="rejected")
    async with jobs("campaigns") as h:
        for claim in ("c_1", "c_2"):
            await h.enqueue("campaigns.claim", {"claimId": claim})
            await h.wait_done("campaigns.claim", f"campaigns.claim:{claim}", {"claimId": claim})
    assert {r.method for r in fake.requests()} == {"GET"}
