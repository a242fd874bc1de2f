"""Delivery slots of the connection pool: the per-destination limit, FIFO hand-over,
cancellation. (Idle-session caching runs over real connections in the integration tests.)"""

from __future__ import annotations

import asyncio

import pytest

from hayate.delivery.pool import ConnectionPool

KEY = ("example.net", None)


def pool(limit: int) -> ConnectionPool:
    return ConnectionPool(limit=limit, idle_timeout=5.0, max_uses=100)


async def test_limit_is_never_exceeded_and_everyone_gets_a_turn() -> None:
    p = pool(3)
    running = 0
    peak = 0
    done = 0

    async def delivery() -> None:
        nonlocal running, peak, done
        await p.acquire(KEY)
        try:
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            running -= 1
            done += 1
        finally:
            p.release(KEY)

    await asyncio.wait_for(asyncio.gather(*(delivery() for _ in range(20))), 5)
    assert peak == 3
    assert done == 20
    assert p.active(KEY) == 0


async def test_waiters_are_served_in_arrival_order() -> None:
    p = pool(1)
    order: list[int] = []
    await p.acquire(KEY)

    async def waiter(i: int) -> None:
        await p.acquire(KEY)
        order.append(i)
        p.release(KEY)

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert order == []
    p.release(KEY)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3, 4]


async def test_destinations_have_separate_limits() -> None:
    p = pool(1)
    await p.acquire(("a.example", None))
    await asyncio.wait_for(p.acquire(("b.example", None)), 1)
    await asyncio.wait_for(p.acquire(("a.example", "192.0.2.7")), 1)  # another source IP
    assert p.active(("a.example", None)) == 1


async def test_cancelled_waiter_gives_up_its_place() -> None:
    p = pool(1)
    await p.acquire(KEY)
    stuck = asyncio.create_task(p.acquire(KEY))
    after = asyncio.create_task(p.acquire(KEY))
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.sleep(0)
    p.release(KEY)
    await asyncio.wait_for(after, 1)
    assert stuck.cancelled()
    assert p.active(KEY) == 1
    p.release(KEY)
    assert p.active(KEY) == 0


async def test_slot_handed_over_just_before_cancel_is_not_lost() -> None:
    p = pool(1)
    await p.acquire(KEY)
    waiter = asyncio.create_task(p.acquire(KEY))
    await asyncio.sleep(0)
    p.release(KEY)  # hands the slot to ``waiter``...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert p.active(KEY) == 0
    await asyncio.wait_for(p.acquire(KEY), 1)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ConnectionPool(limit=0, idle_timeout=1.0, max_uses=1)
