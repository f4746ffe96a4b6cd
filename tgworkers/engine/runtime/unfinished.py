"""The runs a runtime has started whose coroutine has not returned, and who waits for them.

A lost run (the watchdog expired its lease, a renewal said a newer delivery owns its
entry, our own sweep reclaimed it) is cancelled, but cancelling is a request: a handler
may await its clean-up in `except CancelledError` (a compensation, a release) before it
re-raises, and it still runs until its coroutine returns. So no new run of its entry or
of its exclusive key starts in this process before then (promise 3, promise 6): the
consumer that takes such a delivery parks it behind the unfinished run and goes on to
the next one, and the parked delivery is handed out again when that run returns. Other
entries and keys are not held up. Another process is kept off the key by its lock,
which the lost run keeps (extended by each renewal pass, `Leases.hold_lost_locks`)
until it returns, and which is released then (its drop settlement).
"""

from __future__ import annotations

from tgworkers.engine.runtime.delivery import Delivery


class Unfinished:
    """Started runs by entry id and by key lock; deliveries parked behind each."""

    def __init__(self) -> None:
        self._by_entry: dict[tuple[int, bytes], Delivery] = {}  # by `Delivery.held_as`
        self._by_lock: dict[str, Delivery] = {}
        self._behind: dict[Delivery, list[Delivery]] = {}

    def start(self, d: Delivery) -> Delivery | None:
        """Record `d` as running, or park it behind the run it would overlap.

        Returns that run when a run of `d`'s entry or key has not returned: `d` must
        not run now, `end()` of that run hands it back.
        """
        blocker = self._by_entry.get(d.held_as)
        if blocker is None and d.lock is not None:
            blocker = self._by_lock.get(d.lock)
        if blocker is not None:
            self._behind.setdefault(blocker, []).append(d)
            return blocker
        self._by_entry[d.held_as] = d
        if d.lock is not None:
            self._by_lock[d.lock] = d
        return None

    def lost_with_locks(self) -> list[Delivery]:
        """Lost runs that have not returned and hold a key lock: theirs to keep (promise 6)."""
        return [d for d in self._by_lock.values() if d.lost]

    def end(self, d: Delivery) -> list[Delivery] | None:
        """`d`'s coroutine returned: the deliveries parked behind it, to hand out again."""
        if self._by_entry.get(d.held_as) is d:
            del self._by_entry[d.held_as]
        if d.lock is not None and self._by_lock.get(d.lock) is d:
            del self._by_lock[d.lock]
        return self._behind.pop(d, None) if self._behind else None  # once per job: no list
