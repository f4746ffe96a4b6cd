"""One stream entry handed to this worker: what Redis said, and what became of it here.

A `Delivery` is read by every part of the runtime, but its state changes only through
the transitions of the runtime's `Deliveries` table (deliveries.py): the fields marked
"changed by `Deliveries`" below are assigned nowhere else (`tests/unit/test_deliveries.py`
checks the source). Built with `__slots__`, one per read or claimed entry: no dict per
entry, and a misspelt field is an error rather than a new attribute.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tgworkers.engine.wire.envelope import Envelope, MalformedEntryError, from_fields
from tgworkers.engine.wire.keys import PartitionKeys

if TYPE_CHECKING:
    from tgworkers.engine.registry import JobType

HeldAs = tuple[int, bytes]
"""A delivery's key in a runtime's tables: (partition, entry id); `Delivery.held_as`."""


class Delivery:
    """One stream entry handed to this worker, and what became of it here."""

    __slots__ = (
        "cancelled_at",
        "deliveries",
        "entry_id",
        "envelope",
        "error_type",
        "fields",
        "handback",
        "held_as",
        "job_type",
        "leased_at",
        "lock",
        "lost",
        "pk",
        "problem",
        "settling",
        "timeout",
    )

    pk: PartitionKeys
    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int
    """The entry's delivery count when this delivery claimed it: the fencing `token`."""
    held_as: HeldAs
    """Its key in a runtime's tables (held entries, unfinished runs): not the entry id
    alone, which repeats across the partitions' streams (two of them can each add
    `1796611357578-0` in the same millisecond). Built once: looked up several times a job."""
    envelope: Envelope | None
    """The decoded job (`decode`), or None when `problem` says why it is not one."""
    problem: str | None
    job_type: JobType[Any] | None
    """Changed by `Deliveries.taken`: the registered type of the job's name, if any."""
    lock: str | None
    """Changed by `Deliveries.taken`: the exclusive key's lock, for an exclusive type."""
    timeout: asyncio.Timeout | None
    """Changed by `Deliveries.waits` / `returned`: the handler's timeout while it waits."""
    lost: bool
    """Changed by the `Deliveries` loss transitions: someone else may own the entry now."""
    handback: bool
    """Changed by `Deliveries.hand_back`: not to run (shutdown, pause), to go back whole."""
    settling: bool
    """Changed by `Deliveries.settling`: its settlement is built and waits to be sent."""
    leased_at: float
    """Changed by `Deliveries.leased`: monotonic time just before the call that last
    claimed or renewed this entry (or, once lost, extended its key lock): Redis may hand
    it to another worker VT after that, so the run stops before then."""
    cancelled_at: float
    """Set by `cancel` (called by the `Deliveries` transitions and an operator's cancel):
    monotonic time its running handler was first cancelled (0: never); how long its
    clean-up took is measured from here (`job.cleanup_overran`)."""
    error_type: str | None
    """Changed by `Deliveries.failed`: the class name of what the handler raised
    (telemetry's error.type)."""

    def __init__(
        self,
        pk: PartitionKeys,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        deliveries: int = 1,
        leased_at: float = 0.0,
    ) -> None:
        self.pk = pk
        self.entry_id = entry_id
        self.fields = fields
        self.deliveries = deliveries
        self.leased_at = leased_at
        self.held_as = (pk.partition, entry_id)
        self.envelope = None
        self.problem = None
        self.job_type = None
        self.lock = None
        self.timeout = None
        self.lost = False
        self.handback = False
        self.settling = False
        self.error_type = None
        self.cancelled_at = 0.0

    def __repr__(self) -> str:
        state = [n for n in ("lost", "handback", "settling", "running") if getattr(self, n)]
        return (
            f"Delivery({self.pk.ready!r}, {self.entry_id!r}, deliveries={self.deliveries}"
            f"{', ' if state else ''}{', '.join(state)})"
        )

    def decode(self) -> Envelope | None:
        """Fill `envelope`, or `problem` naming why the entry is not a job; the envelope."""
        if not self.fields:
            self.problem = "entry has no fields (deleted while pending)"
            return None
        try:
            env = self.envelope = from_fields(self.fields, entry_id=self.entry_id)
        except MalformedEntryError as exc:
            self.problem = f"malformed entry: {exc}"
            return None
        return env

    def cancel(self) -> None:
        """Interrupt the running handler now (its lease was lost, or shutdown)."""
        if self.timeout is not None:
            now = asyncio.get_running_loop().time()
            self.cancelled_at = self.cancelled_at or time.monotonic()
            self.timeout.reschedule(now)

    @property
    def cleanup_s(self) -> float:
        """Its job type's clean-up budget (0 for an entry that is not a known job)."""
        return self.job_type.cleanup_s if self.job_type is not None else 0.0

    @property
    def running(self) -> bool:
        return self.timeout is not None

    def interrupted(self) -> bool:
        """True when the run must not be settled normally (lease lost, shutdown)."""
        return self.lost or self.handback

    @property
    def job_id(self) -> str:
        return self.envelope.id if self.envelope else ""

    @property
    def spent(self) -> int:
        """Deliveries of this job, counting those before a `repartition` moved it.

        A move re-adds the job as a new entry (delivery count 1); the mover writes
        what the old entry had spent in `moved_deliveries`, so MAX_DELIVERIES
        counts across the move. Not the fencing token: that stays `deliveries`.
        """
        raw = self.fields.get(b"moved_deliveries")
        return self.deliveries + (int(raw) if raw and raw.isdigit() else 0)

    @property
    def token(self) -> int:
        """The fencing token: the entry's delivery count when this delivery claimed it.

        XREADGROUP delivers a new entry with count 1 and every XAUTOCLAIM raises it,
        so the scripts accept a settle, lease renewal, lock or step record only while
        XPENDING still shows this consumer *and* this count (promise 3).
        """
        return self.deliveries
