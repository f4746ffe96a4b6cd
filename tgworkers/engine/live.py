"""`Live[T]`: the one reference a hot reload swaps and every reader follows.

A reload builds a whole new frozen settings value and assigns it to `value`
once; each reader (the worker, `Layout`, `Client`, the stats and schedules views,
the HTTP services) holds the same `Live` and reads `.value` when it needs a
setting, so no reader keeps the start-up values and none sees half a document.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Live(Generic[T]):
    """A shared, swappable reference to an immutable value."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Live({type(self.value).__name__})"


def live(value: T | Live[T]) -> Live[T]:
    """`value` itself when it already is a `Live`, else a new one holding it."""
    return value if isinstance(value, Live) else Live(value)
