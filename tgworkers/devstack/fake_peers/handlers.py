"""What each fake peer does, endpoint by endpoint, following contracts/peers.md.

Handlers are plain functions `(state, call) -> (status, body)` run under the
state lock; the ASGI layer (`app.py`) adds auth, faults, replay and the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tgworkers.devstack.fake_peers.state import JSON, FakeState

Result = tuple[int, JSON]


@dataclass(frozen=True, slots=True)
class Call:
    """One parsed request: path parameters, query and JSON body (or None)."""

    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Any


Handler = Callable[[FakeState, Call], Result]

_ESCROW_MOVES: Final = {
    "open": {"expired", "released", "refunded"},
    "disputed": {"released", "refunded", "split"},
    "expired": {"refunded"},
}


def error(status: int, code: str, message: str = "", **extra: Any) -> Result:
    return status, {"code": code, "message": message or code.replace("_", " "), **extra}


def _page(items: list[JSON], query: Mapping[str, str]) -> JSON:
    start = int(query.get("cursor") or 0)
    limit = max(1, int(query.get("limit") or 100))
    end = start + limit
    return {"items": items[start:end], "nextCursor": str(end) if end < len(items) else None}


def _public(entity: JSON) -> JSON:
    return {k: v for k, v in entity.items() if not k.startswith("_") and k != "status"}


def _holds(state: FakeState, hold_ids: list[str]) -> list[JSON]:
    holds = (state.table("holds").get(h) for h in hold_ids)
    return [{k: h[k] for k in ("holdId", "userId", "amount", "currency")} for h in holds if h]


# -- PlayHub ----------------------------------------------------------------


def settle_cfb_bet(state: FakeState, call: Call) -> Result:
    bet = state.table("bets").get(str(call.body.get("betId")))
    if bet is None:
        return error(404, "bet_not_found")
    if bet["status"] != "open":
        return 200, {"betId": bet["betId"], "status": "already_settled"}
    if state.now_ms() < bet["tEnd"]:
        return error(409, "not_due", retryAt=bet["tEnd"])
    bet["status"] = "settled"
    return 200, {"betId": bet["betId"], "status": "settled"}


def open_bets(state: FakeState, call: Call) -> Result:
    ends_before = int(call.query.get("endsBefore") or 2**62)
    bets = [b for b in state.table("bets").values() if b["status"] == call.query.get("status")]
    due = sorted((b for b in bets if b["tEnd"] < ends_before), key=lambda b: b["tEnd"])
    return 200, _page([{"betId": b["betId"], "tEnd": b["tEnd"]} for b in due], call.query)


def store_price_bars(state: FakeState, call: Call) -> Result:
    bars = call.body.get("bars") if isinstance(call.body, dict) else None
    if not isinstance(bars, list):
        return error(400, "invalid_body", "bars: expected a list")
    for bar in bars:
        state.table("bars")[f"{bar['symbol']}@{bar['minute']}"] = dict(bar)
    return 200, {"stored": len(bars)}


def get_match(state: FakeState, call: Call) -> Result:
    match = state.table("matches").get(call.path["match_id"])
    if match is None:
        return error(404, "match_not_found")
    body: JSON = {
        "matchId": match["matchId"],
        "status": match["status"],
        "holds": _holds(state, match["holdIds"]),
    }
    if match["status"] == "finished":
        body["payouts"] = match["payouts"]
    return 200, body


def mark_match_settled(state: FakeState, call: Call) -> Result:
    match = state.table("matches").get(call.path["match_id"])
    if match is None:
        return error(404, "match_not_found")
    if match["status"] == "settled":
        return error(409, "already_done")
    if match["status"] == "in_progress":
        return error(409, "invalid_transition", "the match is still in progress")
    match["status"] = "settled"
    match["settlementId"] = call.body.get("settlementId")
    return 200, {"matchId": match["matchId"], "status": "settled"}


# -- Payhub -----------------------------------------------------------------


def orphan_holds(state: FakeState, call: Call) -> Result:
    before = int(call.query.get("createdBefore") or 2**62)
    uncorrelated = call.query.get("uncorrelated") == "true"
    holds = [
        h
        for h in state.table("holds").values()
        if h["status"] == call.query.get("status", "active")
        and h["createdAt"] < before
        and not (uncorrelated and h["correlationId"])
    ]
    holds.sort(key=lambda h: (h["createdAt"], h["holdId"]))
    return 200, _page([_public(h) for h in holds], call.query)


def release_hold(state: FakeState, call: Call) -> Result:
    hold = state.table("holds").get(call.path["hold_id"])
    if hold is None:
        return error(404, "hold_not_found")
    if hold["status"] != "active":
        return error(409, "hold_not_active")
    hold["status"] = "released"
    hold["releaseReason"] = call.body.get("reason")
    return 200, {"holdId": hold["holdId"], "status": "released"}


def _sums(entries: list[JSON]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for entry in entries:
        sums[entry["currency"]] += int(entry["amount"])
    return sums


def create_settlement(state: FakeState, call: Call) -> Result:
    body = call.body
    settlement_id = str(body.get("settlementId"))
    if settlement_id in state.table("settlements"):
        return 200, {"settlementId": settlement_id, "status": "settled"}
    holds = [state.table("holds").get(h) for h in body.get("holds", [])]
    if any(h is None for h in holds):
        return error(404, "hold_not_found")
    live = [h for h in holds if h is not None]
    if any(h["status"] != "active" for h in live):
        return error(409, "hold_not_active", "a listed hold was already released or consumed")
    held, paid = _sums(live), _sums(body.get("payouts", []))
    if any(amount > held.get(currency, 0) for currency, amount in paid.items()):
        return error(422, "unbalanced", "payouts exceed the holds")
    for hold in live:
        hold["status"] = "settled"
    fee = {c: held[c] - paid.get(c, 0) for c in held}
    state.table("settlements")[settlement_id] = {**body, "fee": fee}
    return 200, {"settlementId": settlement_id, "status": "settled"}


def issue_reward(state: FakeState, call: Call) -> Result:
    reward_id = str(call.body.get("rewardId"))
    state.table("rewards").setdefault(reward_id, dict(call.body))
    return 200, {"rewardId": reward_id, "status": "issued"}


def ledger_invariants(state: FakeState, _: Call) -> Result:
    violations = list(state.violations)
    return 200, {"ok": not violations, "checkedAt": state.now_ms(), "violations": violations}


# -- Campaigns --------------------------------------------------------------


def get_proof(state: FakeState, call: Call) -> Result:
    proof = state.table("proofs").get(call.path["proof_id"])
    if proof is None:
        return error(404, "proof_not_found")
    return 200, {k: v for k, v in proof.items() if not k.startswith("_")}


def _decide(state: FakeState, proof: JSON, verdict: str) -> None:
    proof["status"] = verdict
    if verdict == "verified" and proof["autoClaim"] and proof["claimId"] is None:
        claim_id = state.next_id("c_")
        proof["claimId"] = claim_id
        state.add_claim(
            claim_id, campaign_id=proof["campaignId"], user_id=proof["userId"], amount=100
        )


def verify_proof(state: FakeState, call: Call) -> Result:
    proof = state.table("proofs").get(call.path["proof_id"])
    if proof is None:
        return error(404, "proof_not_found")
    if proof["kind"] == "channel_join":
        return error(422, "wrong_kind", "channel_join proofs are checked through Discovery")
    scripted = proof["_verify"]
    if scripted["verdict"] != "pending" and proof["status"] == "pending":
        _decide(state, proof, scripted["verdict"])
    return 200, {
        "verdict": scripted["verdict"],
        "reason": scripted.get("reason", ""),
        "retryAt": scripted.get("retryAt"),
    }


def record_verdict(state: FakeState, call: Call) -> Result:
    proof = state.table("proofs").get(call.path["proof_id"])
    if proof is None:
        return error(404, "proof_not_found")
    verdict = call.body.get("verdict")
    if verdict not in ("verified", "rejected"):
        return error(422, "invalid_verdict")
    if proof["status"] == "pending":
        _decide(state, proof, verdict)
    return 200, {
        "proofId": proof["proofId"],
        "status": proof["status"],
        "claimId": proof["claimId"],
    }


def get_claim(state: FakeState, call: Call) -> Result:
    claim = state.table("claims").get(call.path["claim_id"])
    return (200, dict(claim)) if claim is not None else error(404, "claim_not_found")


def record_claim_receipt(state: FakeState, call: Call) -> Result:
    claim = state.table("claims").get(call.path["claim_id"])
    if claim is None:
        return error(404, "claim_not_found")
    if claim["status"] == "rewarded":
        return error(409, "already_done")
    if claim["status"] != "queued":
        return error(409, "invalid_transition", "the claim was rejected")
    claim["status"] = "rewarded"
    claim["receipt"] = dict(call.body)
    return 200, {"claimId": claim["claimId"], "status": "rewarded"}


# -- Escrow, Discovery, Price -----------------------------------------------


def get_escrow(state: FakeState, call: Call) -> Result:
    escrow = state.table("escrows").get(call.path["escrow_id"])
    if escrow is None:
        return error(404, "escrow_not_found")
    body = {k: v for k, v in escrow.items() if k not in ("holdIds", "settlementId")}
    return 200, {**body, "holds": _holds(state, escrow["holdIds"])}


def transition_escrow(state: FakeState, call: Call) -> Result:
    escrow = state.table("escrows").get(call.path["escrow_id"])
    if escrow is None:
        return error(404, "escrow_not_found")
    target = call.body.get("to")
    if escrow["status"] == target:
        return error(409, "already_done")
    if target not in _ESCROW_MOVES.get(escrow["status"], set()):
        return error(409, "invalid_transition", f"{escrow['status']} -> {target}")
    if target == "expired" and state.now_ms() < escrow["expiresAt"]:
        return error(409, "not_due", retryAt=escrow["expiresAt"])
    escrow["status"] = target
    escrow["settlementId"] = call.body.get("settlementId")
    return 200, {"escrowId": escrow["escrowId"], "status": target}


def check_member(state: FakeState, call: Call) -> Result:
    entry = state.table("members").get(f"{call.path['channel_id']}/{call.path['user_id']}")
    return 200, {"member": bool(entry and entry["member"]), "checkedAt": state.now_ms()}


def get_prices(state: FakeState, call: Call) -> Result:
    symbols = [s for s in call.query.get("symbols", "").split(",") if s]
    prices = state.table("prices")
    return 200, {"prices": [dict(prices[s]) for s in symbols if s in prices]}
