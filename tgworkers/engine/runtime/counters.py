"""What one processor runtime counts about its entries, since it started.

One typed home for the counts the runtime's parts keep (the delivery table, recovery,
the promoter, the settle loop): a misspelt name is a type error, not a new counter.
Telemetry exports `reclaimed`, `lost` and `lease_lost` by name (telemetry/exports.py:
`tgworkers.entries.*`); the others are for tests and debugging.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgworkers.engine.runtime.settlement import SettleKind


@dataclass(slots=True)
class RuntimeCounters:
    """Entry counts of one runtime (each field says who counts it)."""

    reclaimed: int = 0
    """Entries our sweeps claimed and dispatched (recovery)."""
    lost: int = 0
    """Entries deleted while pending, and delayed jobs that vanished (recovery, the
    delivery table, the promoter)."""
    lease_lost: int = 0
    """Deliveries another delivery took over (a renewal's verdict), refused their key
    for that reason, or dropped unsettled as lost (the delivery table)."""
    lease_expired: int = 0
    """Deliveries the watchdog (or a consumer's check) stopped unrenewed (the table)."""
    superseded: int = 0
    """Deliveries our own sweep reclaimed while they still ran here (the table)."""
    waited_unfinished: int = 0
    """Deliveries parked behind a lost run still finishing here (the table)."""
    exclusive_waits: int = 0
    """Deliveries whose key was held: back to the delayed set (the table)."""
    cleanup_overran: int = 0
    """Lost runs whose clean-up outlasted its budget or its lock (the leases)."""
    settle_refused: int = 0
    """Settles the scripts refused: the entry was no longer ours (the settle loop)."""
    done: int = 0
    later: int = 0
    dead: int = 0
    """Dead-lettered by a settle, or malformed delayed jobs the promoter moved to the DLQ."""
    hand_back: int = 0

    def settled(self, kind: SettleKind, n: int = 1) -> None:
        """`n` settles of `kind` went through (DROP is counted as `lease_lost`)."""
        match kind:
            case SettleKind.DONE:
                self.done += n
            case SettleKind.LATER:
                self.later += n
            case SettleKind.DEAD:
                self.dead += n
            case SettleKind.HAND_BACK:
                self.hand_back += n
            case SettleKind.DROP:
                self.lease_lost += n
