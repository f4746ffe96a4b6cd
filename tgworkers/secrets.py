"""`Secret`: a value that never shows itself in a repr, a str, a log line or a trace.

The private JWK, admin and metrics tokens and Redis passwords are held in one of
these from the moment they are read; only the code that must use the value calls
`reveal()`.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

T = TypeVar("T")

MASK: Final = "***"


class Secret(Generic[T]):
    """Wraps a secret value; repr and str show `***`."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
