"""Sample work for the `dev` command: seeded peer data and a steady trickle of jobs.

A newcomer should see every kind of outcome within a minute, without typing
anything: bets ending every few seconds (`cfb.settle`), an escrow expiring, a
finished match, a proof and its claim, orphan holds for the reconciler, a call
that fails twice before it succeeds (a scripted 503), and a bet the stub does not
know, which the job dead-letters (404). Everything goes through the real engine
client and the stub peers' seeding helpers, the same paths production takes.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio

from tgworkers.devstack.fake_peers import FakePeers

HOUR_MS: Final = 3_600_000
TICK_S: Final = 3.0
"""One new bet per tick; the other kinds of work take turns (see `SampleWork.tick`)."""

Enqueue = Callable[..., Awaitable[Any]]
"""`Client.enqueue(name, payload, *, run_at_ms=…)`: the engine's, passed in."""


def now_ms() -> int:
    return int(time.time() * 1000)


class SampleWork:
    """Seeds the stub peers, then produces one batch of jobs per tick.

    `recent` holds the last few things it did, for the live view.
    """

    def __init__(self, fake: FakePeers, enqueue: Enqueue, *, tick_s: float = TICK_S) -> None:
        self.fake = fake
        self.state = fake.state
        self.enqueue = enqueue
        self.tick_s = tick_s
        self.recent: deque[str] = deque(maxlen=8)
        self._ids = itertools.count(1)
        self._price = 5.0
        self._turns: tuple[Callable[[], Awaitable[None]], ...] = (
            self.escrow_expiring, self.finished_match, self.proof_and_claim,
            self.flaky_settle, self.orphan_hold, self.unknown_bet,
        )  # fmt: skip

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def note(self, text: str) -> None:
        self.recent.append(f"{time.strftime('%H:%M:%S')} {text}")

    async def seed(self) -> None:
        """The first minute's worth: one of each kind, so every processor has work at once."""
        self.price_moves()
        lost = self._id("b_lost")  # open past its end with no job: the sweep finds it
        self.state.add_bet(lost, t_end_ms=now_ms() - 2 * 60_000)
        for turn in self._turns:
            await turn()
        for _ in range(2):
            await self.bet_ending(in_s=1.0)

    async def run(self) -> None:
        """One tick every `tick_s` until cancelled."""
        for n in itertools.count():
            await anyio.sleep(self.tick_s)
            await self.tick(n)

    async def tick(self, n: int) -> None:
        self.price_moves()
        await self.bet_ending(in_s=2.0)
        await self._turns[n % len(self._turns)]()

    # -- the kinds of work --------------------------------------------------------

    def price_moves(self) -> None:
        self._price *= 1 + random.uniform(-0.01, 0.01)  # noqa: S311 - sample data, not crypto
        self.state.set_price("TON-USD", f"{self._price:.4f}")

    async def bet_ending(self, *, in_s: float) -> None:
        bet = self._id("b_")
        t_end = now_ms() + int(in_s * 1000)
        self.state.add_bet(bet, t_end_ms=t_end)
        await self.enqueue("cfb.settle", {"betId": bet}, run_at_ms=t_end)
        self.note(f"bet {bet} ends in {in_s:g}s → cfb.settle")

    async def unknown_bet(self) -> None:
        bet = self._id("b_missing")
        await self.enqueue("cfb.settle", {"betId": bet})
        self.note(f"bet {bet} unknown to PlayHub → 404 → DLQ")

    async def flaky_settle(self) -> None:
        self.fake.fail("playhub", "settle_cfb_bet", status=503, times=2)
        bet = self._id("b_flaky")
        self.state.add_bet(bet, t_end_ms=now_ms())
        await self.enqueue("cfb.settle", {"betId": bet})
        self.note(f"bet {bet}: PlayHub answers 503 twice → retried")

    async def escrow_expiring(self) -> None:
        escrow = self._id("e_")
        holds = [self._hold("buyer", 5000), self._hold("buyer", 2500)]
        expires = now_ms() + 3000
        self.state.add_escrow(escrow, buyer_id="buyer", seller_id="seller",
                              expires_at_ms=expires, hold_ids=holds)  # fmt: skip
        await self.enqueue("escrow.expire", {"escrowId": escrow}, run_at_ms=expires)
        self.note(f"escrow {escrow} expires in 3s → escrow.expire")

    async def finished_match(self) -> None:
        match = self._id("m_")
        holds = [self._hold("u_1", 1000), self._hold("u_2", 1000)]
        payouts = [{"userId": "u_2", "amount": 1900, "currency": "TON"}]
        self.state.add_match(match, status="finished", hold_ids=holds, payouts=payouts)
        await self.enqueue("games.settlement", {"matchId": match})
        self.note(f"match {match} finished → games.settlement")

    async def proof_and_claim(self) -> None:
        proof, claim = self._id("p_"), self._id("c_")
        self.state.add_proof(proof, campaign_id="cmp_1", user_id="u_1",
                             kind="channel_join", channel_id="ch_1")  # fmt: skip
        self.state.set_member("ch_1", "u_1")
        self.state.add_claim(claim, campaign_id="cmp_1", user_id="u_2", amount=250)
        await self.enqueue("campaigns.verify_async", {"proofId": proof})
        await self.enqueue("campaigns.claim", {"claimId": claim})
        self.note(f"proof {proof} and claim {claim} → campaigns")

    async def orphan_hold(self) -> None:
        hold = self._hold("u_3", 700, created_at_ms=now_ms() - 2 * HOUR_MS)
        self.note(f"hold {hold} orphaned 2h ago → payhub.orphan_holds.gc releases it")

    def _hold(self, user: str, amount: int, *, created_at_ms: int | None = None) -> str:
        hold = self._id("h_")
        self.state.add_hold(hold, user_id=user, amount=amount, created_at_ms=created_at_ms,
                            correlation_id=None if created_at_ms else f"corr_{hold}")  # fmt: skip
        return hold
