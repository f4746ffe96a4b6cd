"""A worker SIGKILLed between two steps of a multi-step job, then recovery by another.

The first worker (a real `run` subprocess) makes the first change; the fake holds
the second change open, and the test kills the worker once the fake has seen it.
Another worker takes the job over after the visibility timeout. Every change must
reach the peers under one key with one effect: the finished step is not sent again
(the step record), the interrupted one is sent again under the same key.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.support.platform_jobs import now_ms, peers_env
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS

RECOVERY = {"VISIBILITY_TIMEOUT_MS": "1000"}


@dataclass
class Scenario:
    processor: str
    job: str
    payload: dict[str, Any]
    hang: tuple[str, str, str]  # peer, route name, path of the held change
    done: tuple[str, str]  # peer, path of the change made before the crash
    keys: dict[str, int] = field(default_factory=dict)  # key -> requests expected


def seed_games(fake) -> None:
    fake.state.add_hold("h_1", user_id="u_1", amount=1000)
    fake.state.add_match("m_1", status="finished", hold_ids=["h_1"],
                         payouts=[{"userId": "u_1", "amount": 900, "currency": "TON"}])  # fmt: skip


def seed_escrow(fake, status: str) -> None:
    fake.state.add_hold("h_9", user_id="buyer", amount=5000)
    fake.state.add_escrow("e_1", buyer_id="buyer", seller_id="seller",
                          expires_at_ms=now_ms() - 1000, status=status, hold_ids=["h_9"])  # fmt: skip


SCENARIOS = {
    "games.settlement": (
        seed_games,
        Scenario("games.settlement", "games.settlement", {"matchId": "m_1"},
                 ("playhub", "mark_match_settled", "/internal/v1/games/m_1/settled"),
                 ("payhub", "/internal/v1/settlements"),
                 {"game:m_1": 1, "games.settlement:m_1:mark": 2}),
    ),
    "campaigns.claim": (
        lambda fake: fake.state.add_claim("c_1", campaign_id="cmp_1", user_id="u_1", amount=7),
        Scenario("campaigns", "campaigns.claim", {"claimId": "c_1"},
                 ("campaigns", "record_claim_receipt", "/internal/v1/claims/c_1/receipt"),
                 ("payhub", "/internal/v1/rewards"),
                 {"claim:c_1": 1, "campaigns.claim:c_1:receipt": 2}),
    ),
    "escrow.expire": (
        lambda fake: seed_escrow(fake, "open"),
        Scenario("escrow", "escrow.expire", {"escrowId": "e_1"},
                 ("escrow", "transition_escrow", "/internal/v1/escrows/e_1/transition"),
                 ("payhub", "/internal/v1/holds/h_9/release"),
                 {"escrow.expire:e_1:release:h_9": 1, "escrow.expire:e_1:transition": 2}),
    ),
    "escrow.adjudicate": (
        lambda fake: seed_escrow(fake, "disputed"),
        Scenario("escrow", "escrow.adjudicate",
                 {"escrowId": "e_1", "decision": "split", "splitBps": 2500, "moderatorId": "m"},
                 ("escrow", "transition_escrow", "/internal/v1/escrows/e_1/transition"),
                 ("payhub", "/internal/v1/settlements"),
                 {"escrow:e_1": 1, "escrow.adjudicate:e_1:transition": 2}),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_killed_between_steps_recovers_with_one_effect_per_key(
    name, jobs, fake, jwk_text, redis, settings
):
    seed, sc = SCENARIOS[name]
    seed(fake)
    peer, route, held_path = sc.hang
    fake.hang(peer, route, hang_s=10)
    env = {**peers_env(fake, jwk_text), **RECOVERY}
    job = await Client(redis, Registry(PROCESSORS), settings).enqueue(sc.job, sc.payload)
    redis_url = settings.redis_url.reveal()
    first = start_worker(
        redis_url, processors=sc.processor, app="tgworkers.jobs:PROCESSORS", env=env
    )
    try:
        await wait_until(lambda: fake.requests(peer, held_path), timeout_s=15, what="held change")
        assert len(fake.requests(*sc.done)) == 1, first.log()
        first.kill()
    finally:
        first.close()
    async with jobs(sc.processor, **RECOVERY) as h:
        await h.wait_done(sc.job, job.id, sc.payload, timeout_s=10)
    posts = [r for r in fake.requests() if r.method == "POST"]
    assert Counter(r.idempotency_key for r in posts) == sc.keys
    assert {r.headers["x-request-id"] for r in posts} >= {f"{job.id}:1"}
    assert_one_effect(name, fake)


def assert_one_effect(name: str, fake) -> None:
    """The peers' state after recovery: each change applied exactly once."""
    state = fake.state
    if name == "games.settlement":
        assert list(state.table("settlements")) == ["game:m_1"]
        assert state.get("matches", "m_1")["status"] == "settled"
    elif name == "campaigns.claim":
        assert list(state.table("rewards")) == ["claim:c_1"]
        assert state.get("claims", "c_1")["status"] == "rewarded"
    elif name == "escrow.expire":
        assert state.get("holds", "h_9")["status"] == "released"
        assert state.get("escrows", "e_1")["status"] == "expired"
    else:
        assert state.get("settlements", "escrow:e_1")["payouts"] == [
            {"userId": "seller", "amount": 1250, "currency": "TON"},
            {"userId": "buyer", "amount": 3750, "currency": "TON"},
        ]
        assert state.get("escrows", "e_1")["status"] == "split"
