"""What the escrow jobs share besides `shapes.release_holds`: the statuses that are final."""

from __future__ import annotations

FINAL_STATUSES = frozenset({"expired", "released", "refunded", "split"})
