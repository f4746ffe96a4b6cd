"""The typed arguments and replies of the Lua scripts (`scripts.py` calls them).

One value per item a script takes in a batch (a settle, a lease, a lock) or per reply
it gives (a promote, a reclaim page), frozen but for `DoneItem`: one is built per job
done, and a frozen dataclass sets each field through `object.__setattr__` (four times
the cost of a plain slots class; nothing changes an item once built). The runtime and
the client build and read these; only `scripts.py` turns them into KEYS and ARGV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

Fields = Sequence[str | bytes]
"""A stream entry's fields, flat: name, value, name, value, …"""


@dataclass(frozen=True, slots=True)
class NewJob:
    """One job for `enqueue`: its id, due time (0 = now) and stream fields as JSON."""

    id: str
    due_ms: int
    fields_json: bytes


@dataclass(slots=True)
class DoneItem:
    """A finished job for `settle_done` (one per job: not frozen, see the module's doc)."""

    entry_id: bytes
    job_id: str
    dedupe: bool
    lock: str | None
    token: int


@dataclass(frozen=True, slots=True)
class LaterItem:
    """A job to run again later, for `settle_later`."""

    entry_id: bytes
    job_id: str
    at_ms: int
    delay_ms: int
    retry: bool
    fields_json: bytes
    lock: str | None
    token: int
    snoozes: int = 0
    """Past-due snoozes so far: the script's floor for a due time in the past grows with it."""


@dataclass(frozen=True, slots=True)
class DeadItem:
    """A job for `dead_letter`, with the fields of its DLQ entry."""

    entry_id: bytes
    job_id: str
    failed: bool
    fields: Fields
    lock: str | None
    token: int


@dataclass(frozen=True, slots=True)
class LeaseItem:
    """An entry whose lease `renew_leases` extends."""

    entry_id: bytes
    job_id: str
    lock: str | None
    token: int


@dataclass(frozen=True, slots=True)
class HeldLock:
    """A lost run's exclusivity lock, for `hold_locks`: the key and the delivery it names."""

    lock: str
    entry_id: bytes
    token: int


@dataclass(frozen=True, slots=True)
class AcquireItem:
    """A delivered job that needs its exclusivity lock."""

    entry_id: bytes
    job_id: str
    lock: str
    fields_json: bytes
    token: int
    wait_ms: int
    """How long the job waits in the delayed set when its key is held (backs off)."""


@dataclass(frozen=True, slots=True)
class HandBackItem:
    """An unfinished job handed back on shutdown."""

    entry_id: bytes
    job_id: str
    fields: Fields
    lock: str | None
    token: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """An entry taken over by `reclaim_idle`, with its delivery count."""

    entry_id: bytes
    deliveries: int
    fields: dict[bytes, bytes]


class Promoted(NamedTuple):
    """One `promote_due` call: what moved, what was missing or malformed, what comes next."""

    moved: int
    lost: int
    next_due_ms: int
    """-1 when nothing is delayed."""
    now_ms: int
    """Redis's clock when the script ran."""
    dead: int
    """Malformed delayed records dead-lettered with their bytes."""


@dataclass(frozen=True, slots=True)
class ReclaimPage:
    """One XAUTOCLAIM page: next cursor, claimed entries, deleted ids."""

    cursor: bytes
    claimed: list[Claimed]
    deleted: list[bytes]
