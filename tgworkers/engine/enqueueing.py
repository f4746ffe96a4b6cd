"""What an enqueue takes and returns, and the narrow face of the client a job sees.

Apart from `client.py` so that `JobContext` (which jobs use to enqueue more jobs)
depends on this small contract, not on the client and everything it imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import msgspec


class EnqueueRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One job to enqueue. `payload` is a Struct, a mapping or JSON text."""

    name: str
    payload: Any
    id: str | None = None
    run_at_ms: int | None = None
    delay_s: float | None = None
    origin: str | None = None
    expires_at_ms: int | None = None
    """Deadline (Unix ms): delivered after it, the job is dead-lettered `expired`, not run."""


class EnqueueResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What `enqueue --json` prints: `{"id", "queue", "runAt", "created"}`."""

    id: str
    queue: str
    run_at: int
    created: bool


class Enqueuer(Protocol):
    """The enqueue client as a handler sees it (`ctx.client`); `Client` fits it."""

    async def enqueue(  # noqa: PLR0913 - keyword-only enqueue options
        self,
        name: str,
        payload: Any,
        *,
        id: str | None = None,
        run_at_ms: int | None = None,
        delay_s: float | None = None,
        origin: str | None = None,
        expires_at_ms: int | None = None,
    ) -> EnqueueResult: ...

    async def enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[EnqueueResult]: ...
