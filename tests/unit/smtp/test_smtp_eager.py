"""hayate.smtp.eager: coroutines finish inline when they can, else continue in a real Task."""

from __future__ import annotations

import asyncio

import pytest

from hayate.smtp.eager import Suspended, run_eagerly


async def immediate(value: int) -> int:
    return value * 2


async def waits_for(fut: asyncio.Future[int], log: list[str]) -> int:
    log.append("before")
    got = await fut
    log.append("after")
    await asyncio.sleep(0)
    return got + 1


async def test_finishes_inline() -> None:
    assert run_eagerly(immediate(21), asyncio.get_running_loop()) == 42


async def test_exception_before_suspending_propagates() -> None:
    async def boom() -> int:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_eagerly(boom(), asyncio.get_running_loop())


async def test_suspended_coroutine_continues_in_a_task() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    log: list[str] = []
    outcome = run_eagerly(waits_for(fut, log), loop)
    assert isinstance(outcome, Suspended)
    assert log == ["before"]  # the first step ran inline
    loop.call_later(0.01, fut.set_result, 5)
    assert await asyncio.wait_for(outcome.task, 2) == 6
    assert log == ["before", "after"]


async def test_exception_after_suspending_reaches_the_task() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    outcome = run_eagerly(waits_for(fut, []), loop)
    assert isinstance(outcome, Suspended)
    fut.set_exception(OSError("gone"))
    with pytest.raises(OSError, match="gone"):
        await outcome.task


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    cleaned: list[bool] = []

    async def sleeper() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    outcome = run_eagerly(sleeper(), loop)
    assert isinstance(outcome, Suspended)
    await asyncio.sleep(0)
    outcome.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome.task
    assert cleaned == [True]
