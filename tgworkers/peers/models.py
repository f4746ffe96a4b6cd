"""Bodies shared by several peers (holds, payouts, references) and the `Effect` of a change.

All are frozen msgspec Structs, camelCase on the wire; times carry `_ms` in their
Python names (`msgspec.field(name=...)` keeps the contract's wire name).
"""

from __future__ import annotations

import enum
from typing import Literal

import msgspec


class Effect(enum.Enum):
    """What a mutating call did, so a job can count skips without parsing codes."""

    APPLIED = "applied"
    """The peer made the change now (or replayed the first answer to this key)."""
    ALREADY_DONE = "already_done"
    """409 `already_done`: the change had happened earlier."""
    NOT_ACTIVE = "not_active"
    """409 `hold_not_active` on a release: the hold was already released or settled."""


class Wire(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every peer body: frozen, keyword-only, camelCase on the wire."""


class Money(Wire, frozen=True, kw_only=True):
    """An integer number of minor units and a currency code."""

    amount: int
    currency: str


class Hold(Wire, frozen=True, kw_only=True):
    """Funds held for one user (a match's or an escrow's stake)."""

    hold_id: str
    user_id: str
    amount: int
    currency: str


class Payout(Wire, frozen=True, kw_only=True):
    """Money paid to one user by a settlement."""

    user_id: str
    amount: int
    currency: str


class Reference(Wire, frozen=True, kw_only=True):
    """What a settlement or reward is for."""

    kind: Literal["game", "escrow", "campaign"]
    id: str


class Page(Wire, frozen=True, kw_only=True):
    """The cursor part of a list answer."""

    next_cursor: str | None = None


class Conflict(Wire, frozen=True, kw_only=True):
    """A 409 body: the code decides whether it is success-equivalent."""

    code: str | None = None
