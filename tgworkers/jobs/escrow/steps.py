"""Steps shared by the escrow jobs: release every hold once, each under its own key.

A released hold's step (`release:{holdId}`) is recorded in the job's step record,
so a run after a crash does not send it again; a hold that is no longer active
(409 `hold_not_active`) counts as released.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from tgworkers.engine import JobContext
from tgworkers.peers import Peers
from tgworkers.peers.escrow import Escrow
from tgworkers.peers.payhub import ReleaseReason

FINAL_STATUSES = frozenset({"expired", "released", "refunded", "split"})


async def release_holds(
    ctx: JobContext,
    peers: Peers,
    escrow: Escrow,
    *,
    reason: ReleaseReason,
    key_of: Callable[[str], str],
) -> None:
    for hold in escrow.holds:
        release = functools.partial(
            peers.payhub.release_hold, hold.hold_id, reason=reason, key=key_of(hold.hold_id)
        )
        await ctx.steps.once(f"release:{hold.hold_id}", release)
