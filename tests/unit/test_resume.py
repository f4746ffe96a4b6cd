"""`executor.resume`: finishing a coroutine stepped once by hand behaves as `await` would."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tgworkers.engine.runtime.executor import resume

T = TypeVar("T")


async def _waits_then_returns(log: list[str]) -> str:
    log.append("before")
    await asyncio.sleep(0.01)
    log.append("after")
    return "done"


async def _stepped(coro: Coroutine[Any, Any, T]) -> T:
    try:
        pending = coro.send(None)
    except StopIteration as finished:
        return finished.value
    return await resume(coro, pending)


async def test_a_coroutine_that_waits_is_finished_with_its_result() -> None:
    log: list[str] = []
    assert await _stepped(_waits_then_returns(log)) == "done"
    assert log == ["before", "after"]


async def test_a_timeout_after_the_first_wait_still_interrupts_the_handler() -> None:
    cleaned: list[bool] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    coro = slow()
    pending = coro.send(None)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await resume(coro, pending)
    assert cleaned == [True]


async def test_exceptions_raised_after_a_wait_propagate_unchanged() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad payload")

    with pytest.raises(ValueError, match="bad payload"):
        await _stepped(fails())


async def test_a_handler_may_catch_what_is_thrown_into_it() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "handled"
        return "slept"

    task = asyncio.ensure_future(_stepped(stubborn()))
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "handled"
