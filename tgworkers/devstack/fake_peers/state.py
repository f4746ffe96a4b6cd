"""The fake peers' in-memory world: entities, seeding helpers, faults, requests seen.

Every read and write goes through `lock` (an `RLock`): the server runs in its own
thread and event loop, while tests seed and inspect from theirs.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it (headers lower-cased, body parsed as JSON when it is)."""

    peer: str
    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    received_s: float = field(default_factory=time.time)
    """When the fake received it (Unix seconds): lets a test see calls' order in time."""

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass(slots=True)
class Fault:
    """Misbehaviour for the next `times` matching calls (`None`: until cleared).

    Exactly one effect applies: `status` (+ `body`, `retry_after`), `hang_s`,
    `reset` (the connection breaks mid-answer) or only `delay_s` before the real
    answer. A fault hits before authentication and idempotency, like a broken proxy.
    """

    peer: str | None = None
    route: str | None = None
    times: int | None = 1
    status: int | None = None
    body: bytes | JSON | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    hang_s: float = 0.0
    reset: bool = False

    def matches(self, peer: str, route: str) -> bool:
        return self.peer in (None, peer) and self.route in (None, route)


@dataclass(slots=True)
class Answer:
    """A peer's answer as kept for `Idempotency-Key` replay."""

    status: int
    body: JSON
    replayed: bool = False


@dataclass
class FakeState:
    """The fake world: entities by kind as wire-shaped (camelCase) dicts.

    Kinds: `bets`, `matches`, `holds`, `settlements`, `rewards`, `proofs`, `claims`,
    `escrows`, `members`, `prices`, `bars`.
    """

    clock: Callable[[], float] = time.time
    lock: threading.RLock = field(default_factory=threading.RLock)
    entities: dict[str, dict[str, JSON]] = field(default_factory=dict)
    violations: list[JSON] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    recorded: list[RecordedRequest] = field(default_factory=list)
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    counter: int = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def table(self, kind: str) -> dict[str, JSON]:
        return self.entities.setdefault(kind, {})

    def get(self, kind: str, key: str) -> JSON | None:
        """A copy of one entity, or None (safe to call from any thread)."""
        with self.lock:
            found = self.table(kind).get(key)
            return copy.deepcopy(found) if found is not None else None

    def put(self, kind: str, key: str, entity: JSON) -> JSON:
        with self.lock:
            self.table(kind)[key] = entity
            return entity

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter}"

    def clear(self) -> None:
        """Forget every entity, fault, answer and recorded request."""
        with self.lock:
            self.entities.clear()
            self.violations.clear()
            self.faults.clear()
            self.recorded.clear()
            self.answers.clear()

    # -- faults ---------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, peer: str, route: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(peer, route):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # -- seeding --------------------------------------------------------------

    def add_bet(self, bet_id: str, *, t_end_ms: int, status: str = "open") -> JSON:
        return self.put("bets", bet_id, {"betId": bet_id, "tEnd": t_end_ms, "status": status})

    def add_hold(  # noqa: PLR0913 - the fields of a hold
        self,
        hold_id: str,
        *,
        user_id: str,
        amount: int,
        currency: str = "TON",
        created_at_ms: int | None = None,
        correlation_id: str | None = None,
        status: str = "active",
    ) -> JSON:
        created = self.now_ms() if created_at_ms is None else created_at_ms
        hold = {
            "holdId": hold_id,
            "userId": user_id,
            "amount": amount,
            "currency": currency,
            "createdAt": created,
            "correlationId": correlation_id,
            "status": status,
        }
        return self.put("holds", hold_id, hold)

    def add_match(
        self,
        match_id: str,
        *,
        status: str,
        hold_ids: Iterable[str] = (),
        payouts: Iterable[Mapping[str, Any]] = (),
    ) -> JSON:
        match = {
            "matchId": match_id,
            "status": status,
            "holdIds": list(hold_ids),
            "payouts": [dict(p) for p in payouts],
        }
        return self.put("matches", match_id, match)

    def add_escrow(
        self,
        escrow_id: str,
        *,
        buyer_id: str,
        seller_id: str,
        expires_at_ms: int,
        status: str = "open",
        hold_ids: Iterable[str] = (),
    ) -> JSON:
        escrow = {
            "escrowId": escrow_id,
            "status": status,
            "expiresAt": expires_at_ms,
            "buyerId": buyer_id,
            "sellerId": seller_id,
            "holdIds": list(hold_ids),
        }
        return self.put("escrows", escrow_id, escrow)

    def add_proof(  # noqa: PLR0913 - the fields of a proof and its scripted verdict
        self,
        proof_id: str,
        *,
        campaign_id: str,
        user_id: str,
        kind: str = "external",
        channel_id: str | None = None,
        status: str = "pending",
        auto_claim: bool = True,
        verify: JSON | None = None,
    ) -> JSON:
        """`verify` is what `/verify` answers (default: verified); claims get `reward`."""
        proof = {
            "proofId": proof_id,
            "campaignId": campaign_id,
            "userId": user_id,
            "kind": kind,
            "channelId": channel_id,
            "status": status,
            "autoClaim": auto_claim,
            "claimId": None,
            "_verify": verify or {"verdict": "verified", "reason": "ok"},
        }
        return self.put("proofs", proof_id, proof)

    def add_claim(
        self,
        claim_id: str,
        *,
        campaign_id: str,
        user_id: str,
        amount: int,
        currency: str = "STARS",
        status: str = "queued",
    ) -> JSON:
        claim = {
            "claimId": claim_id,
            "campaignId": campaign_id,
            "userId": user_id,
            "reward": {"amount": amount, "currency": currency},
            "status": status,
        }
        return self.put("claims", claim_id, claim)

    def set_member(self, channel_id: str, user_id: str, *, member: bool = True) -> None:
        self.put("members", f"{channel_id}/{user_id}", {"member": member})

    def set_price(self, symbol: str, price: str, *, ts_ms: int | None = None) -> None:
        ts = self.now_ms() if ts_ms is None else ts_ms
        self.put("prices", symbol, {"symbol": symbol, "price": price, "ts": ts})

    def set_violations(self, violations: Iterable[Mapping[str, Any]]) -> None:
        with self.lock:
            self.violations = [dict(v) for v in violations]
