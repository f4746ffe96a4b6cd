"""Pure parts of the jobs: split arithmetic, payload checks, keys, bars, the processor table."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from tgworkers.config import load_settings
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS
from tgworkers.jobs.cfb.price_sample import Bar, fold
from tgworkers.jobs.escrow.adjudicate import (
    AdjudicateEscrow,
    payouts_for,
    split_amounts,
    validate_decision,
)
from tgworkers.jobs.games.settlement import SettleMatch, keys_for as game_keys
from tgworkers.jobs.settings import JobSettings, missing_requirements, peers_config
from tgworkers.peers.escrow import Escrow
from tgworkers.peers.models import Hold


@given(held=st.integers(min_value=0, max_value=10**15), bps=st.integers(0, 10_000))
def test_split_is_exact_in_minor_units(held: int, bps: int) -> None:
    seller, buyer = split_amounts(held, bps)
    assert seller + buyer == held
    assert seller == held * bps // 10_000
    assert 0 <= seller <= held and 0 <= buyer <= held


@given(
    amounts=st.lists(st.tuples(st.sampled_from(["TON", "STARS"]), st.integers(1, 10**12)),
                     min_size=1, max_size=6),
    bps=st.integers(0, 10_000),
)  # fmt: skip
def test_split_payouts_sum_to_the_held_amount_per_currency(amounts, bps) -> None:
    holds = [Hold(hold_id=f"h{i}", user_id="b", amount=a, currency=c)
             for i, (c, a) in enumerate(amounts)]  # fmt: skip
    escrow = Escrow(escrow_id="e", status="disputed", expires_at_ms=0, buyer_id="b",
                    seller_id="s", holds=holds)  # fmt: skip
    payouts = payouts_for(escrow, bps)
    for currency in {c for c, _ in amounts}:
        held = sum(a for c, a in amounts if c == currency)
        paid = {p.user_id: p.amount for p in payouts if p.currency == currency}
        assert sum(paid.values()) == held
        assert paid.get("s", 0) == held * bps // 10_000
    assert all(p.amount > 0 for p in payouts)


@pytest.mark.parametrize(
    ("decision", "bps", "problem"),
    [("split", None, "required"), ("split", 10_001, "between 0 and 10000"),
     ("split", -1, "between 0 and 10000"), ("release", 5000, "only allowed"),
     ("split", 0, None), ("split", 10_000, None), ("refund", None, None)],
)  # fmt: skip
def test_split_bps_checks_name_the_field(decision, bps, problem) -> None:
    payload = AdjudicateEscrow(escrow_id="e", decision=decision, split_bps=bps, moderator_id="m")
    if problem is None:
        validate_decision(payload)
        return
    with pytest.raises(ValueError, match=f"splitBps: .*{problem}"):
        validate_decision(payload)


def test_fold_keeps_ohlc_and_counts_a_sample_once() -> None:
    bar = fold(None, "5.12", 1)
    for price, ts in (("5.20", 2), ("5.10", 3), ("5.18", 4)):
        bar = fold(bar, price, ts)
    assert bar == Bar(open="5.12", high="5.20", low="5.10", close="5.18", samples=4, last_ts=4)
    assert fold(bar, "9.99", 4) is None  # the same sample again


def test_game_keys_follow_the_contract() -> None:
    keys = game_keys(SettleMatch(match_id="m_1"))
    assert (keys.settlement_id, keys.cancel_settlement_id, keys.mark, keys.release("h_1")) == (
        "game:m_1", "game:m_1:cancel", "games.settlement:m_1:mark", "games.settlement:m_1:release:h_1",
    )  # fmt: skip


TABLE = {
    "cfb.settle": (("cfb.settle", "cfb.settle.sweep"), "ENABLE_CFB_SETTLE", True,
                   {"CRON_CFB_SETTLE_SWEEP": "*/1 * * * *"}),
    "cfb.price.sample": (("cfb.price.sample",), "ENABLE_PRICE_SAMPLER", True,
                         {"CRON_CFB_PRICE_SAMPLE": "*/1 * * * *"}),
    "games.settlement": (("games.settlement",), "ENABLE_GAMES_SETTLEMENT", True, {}),
    "payhub.orphan_holds.gc": (("payhub.orphan_holds.gc",), "ENABLE_RECON_ORPHAN_HOLDS", True,
                               {"CRON_RECON_ORPHAN_HOLDS": "*/10 * * * *"}),
    "payhub.ledger.recalc": (("payhub.ledger.recalc",), "ENABLE_LEDGER_RECALC", False,
                             {"CRON_LEDGER_RECALC": "*/15 * * * *"}),
    "campaigns": (("campaigns.verify_async", "campaigns.claim"), "ENABLE_CAMPAIGNS", True, {}),
    "escrow": (("escrow.expire", "escrow.adjudicate"), "ENABLE_ESCROW", True, {}),
    "dlq.replay": (("dlq.replay",), "ENABLE_DLQ_REPLAYER", True, {}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TABLE))
def test_processors_are_the_contracts_table(name: str) -> None:
    proc = Registry(PROCESSORS).processors[name]
    job_types, flag, default, schedules = TABLE[name]
    assert tuple(jt.name for jt in proc.job_types) == job_types
    assert (proc.enabled_by, proc.enabled_default) == (flag, default)
    assert {s.env: s.default for s in proc.schedules} == schedules


@pytest.mark.parametrize(
    ("job", "payload", "job_id", "key", "exclusive"),
    [("cfb.settle", {"betId": "b"}, "cfb.settle:b", "b", False),
     ("games.settlement", {"matchId": "m"}, "games.settlement:m", "m", True),
     ("campaigns.verify_async", {"proofId": "p"}, "campaigns.verify_async:p", "p", False),
     ("campaigns.claim", {"claimId": "c"}, "campaigns.claim:c", "c", False),
     ("escrow.expire", {"escrowId": "e"}, "escrow.expire:e", "e", True),
     ("escrow.adjudicate", {"escrowId": "e", "decision": "refund", "moderatorId": "m"},
      "escrow.adjudicate:e", "e", True)],
)  # fmt: skip
def test_job_ids_and_partition_keys(job, payload, job_id, key, exclusive) -> None:
    jt = Registry(PROCESSORS).job_type(job)
    value = jt.decoder.decode(json.dumps(payload))
    assert jt.job_id is not None and jt.job_id(value) == job_id
    assert jt.partition_key is not None and jt.partition_key(value) == key
    assert jt.exclusive is exclusive


def test_settings_reach_the_jobs_and_the_peers() -> None:
    settings = load_settings({
        "ORPHAN_HOLD_TTL_MS": "5000", "CAMPAIGN_PROOF_DEADLINE_MS": "7000",
        "CFB_PRICE_SYMBOLS": "TON-USD,BTC-USD", "PRICE_BARS_RETENTION": "30",
        "SVC_PAYHUB_URL": "http://gw/payhub", "SVC_PAYHUB_TIMEOUT_S": "3", "SERVICE_ID": "svc",
    })  # fmt: skip
    js = JobSettings.from_settings(settings)
    assert (js.orphan_hold_ttl_ms, js.campaign_proof_deadline_ms) == (5000, 7000)
    assert (js.cfb_price_symbols, js.price_bars_retention_min) == (("TON-USD", "BTC-USD"), 30)
    config = peers_config(settings)
    assert (config.payhub_url, config.price_url, config.service_id) == (
        "http://gw/payhub",
        None,
        "svc",
    )
    assert config.timeout_overrides["payhub"].total_s == 3
    escrow = Registry(PROCESSORS).processors["escrow"]
    assert missing_requirements(settings, escrow) == ["SVC_ESCROW_URL", "SERVICE_JWT_PRIVATE_JWK"]
