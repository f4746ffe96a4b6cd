"""The toolkit's fake peers: scripted answers, slow and hung calls, as `perform` sees them."""

from __future__ import annotations

import time

from tgworkers.engine import Disposition
from tgworkers.testing import FakePeerService, assert_peer_called, perform

SETTLE = "/internal/v1/cfb/settle"


async def test_a_scripted_answer_replaces_the_fakes_logic():
    peers = FakePeerService()  # no bet seeded: the fake alone would answer 404
    peers.answer(
        "playhub", "settle_cfb_bet", status=200, body={"betId": "b_1", "status": "settled"}
    )
    result = await perform("cfb.settle", {"betId": "b_1"}, peers=peers)
    assert result.disposition is Disposition.DONE
    again = await perform("cfb.settle", {"betId": "b_1"}, peers=peers)  # the answer was used once
    assert again.disposition is Disposition.DEAD
    assert_peer_called(peers.requests(), "playhub", "POST", SETTLE, times=2)


async def test_a_slow_peer_answers_late_and_a_hung_one_times_out_into_a_retry():
    peers = FakePeerService()
    peers.state.add_bet("b_1", t_end_ms=0)
    peers.slow("playhub", "settle_cfb_bet", delay_s=0.3)
    started = time.monotonic()
    slow = await perform("cfb.settle", {"betId": "b_1"}, peers=peers)
    assert slow.disposition is Disposition.DONE
    assert time.monotonic() - started >= 0.3
    peers.hang("playhub", "settle_cfb_bet", hang_s=1.0)
    hung = await perform(
        "cfb.settle", {"betId": "b_2"}, peers=peers, env={"SVC_PLAYHUB_TIMEOUT_S": "0.2"}
    )
    assert hung.disposition is Disposition.RETRY
    assert "PeerTimeoutError" in type(hung.error).__name__
