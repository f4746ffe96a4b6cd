"""Settle a game match whose game-server callback failed.

Reads the match from PlayHub. `finished`: one Payhub settlement of the match's
holds to its payouts (`settlementId = game:{matchId}`), then the match is marked
settled. `cancelled`: every hold is released (`match_cancelled`), then the match is
marked settled with `settlementId = game:{matchId}:cancel`. `settled`: nothing to do;
`in_progress`: retried with backoff (an attempt spent); 404 dead-letters.

Every change has its own key (from `keys_for`), and each finished step is recorded
in the job's step record, so a run after a crash skips what is known done and a
peer dedupes the rest.
"""

from __future__ import annotations

import functools

import msgspec
import structlog

from tgworkers.engine import Done, JobContext, Outcome, RetryLater
from tgworkers.jobs.shapes import ReleaseKeys, one_per, release_holds
from tgworkers.peers import Peers, Reference, SettlementRequest
from tgworkers.peers.playhub import Match

log = structlog.get_logger("tgworkers.jobs.games")


class SettleMatch(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """Payload: {"matchId": "m_1"}."""

    match_id: str


class Keys(ReleaseKeys, frozen=True, kw_only=True):
    """Every id and Idempotency-Key of one match's settlement."""

    settlement_id: str
    cancel_settlement_id: str
    mark: str


def keys_for(p: SettleMatch) -> Keys:
    return Keys(
        settlement_id=f"game:{p.match_id}",
        cancel_settlement_id=f"game:{p.match_id}:cancel",
        mark=f"games.settlement:{p.match_id}:mark",
        release_prefix=f"games.settlement:{p.match_id}:release:",
    )


async def _settle(ctx: JobContext, peers: Peers, match: Match, keys: Keys) -> None:
    request = SettlementRequest(
        settlement_id=keys.settlement_id,
        reference=Reference(kind="game", id=match.match_id),
        holds=[h.hold_id for h in match.holds],
        payouts=match.payouts,
    )
    settle = functools.partial(peers.payhub.create_settlement, request, key=keys.settlement_id)
    await ctx.steps.once("settle", settle)


async def settle_match(ctx: JobContext, payload: SettleMatch) -> Outcome:
    peers = ctx.resources(Peers)
    keys = keys_for(payload)
    match = await peers.playhub.get_match(payload.match_id)
    if match.status == "settled":
        return Done()
    if match.status == "in_progress":
        raise RetryLater(f"match {payload.match_id} is still in progress")
    if match.status == "finished":
        await _settle(ctx, peers, match, keys)
        settlement_id = keys.settlement_id
    else:
        await release_holds(ctx, peers, match.holds, reason="match_cancelled", key_of=keys.release)
        settlement_id = keys.cancel_settlement_id
    await peers.playhub.mark_match_settled(
        payload.match_id, settlement_id=settlement_id, key=keys.mark
    )
    log.info("games.match_settled", match_id=payload.match_id, status=match.status)
    return Done()


SETTLE_MATCH = one_per(
    lambda p: p.match_id,
    name="games.settlement",
    payload=SettleMatch,
    handler=settle_match,
    exclusive=True,
    timeout_s=60.0,
)
