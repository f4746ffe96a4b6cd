"""Wait on a condition with a deadline instead of sleeping and hoping."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio


async def wait_until(
    condition: Callable[[], Any | Awaitable[Any]],
    *,
    timeout_s: float = 5.0,
    what: str = "condition",
    interval_s: float = 0.01,
) -> Any:
    """Poll `condition` until truthy; fail with the last value seen at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = condition()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
        await anyio.sleep(interval_s)


def wait_until_sync(
    condition: Callable[[], Any], *, timeout_s: float = 5.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
        time.sleep(0.01)
