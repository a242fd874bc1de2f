"""MailboxLocks on both engines: exclusive across two store connections (two workers or
nodes), re-entrant for the holder, refreshed, released, taken over once expired."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.clock import FakeClock
from tests.unit.store.store_helpers import sibling

from hayate.mailbox.locks import MailboxLocks
from hayate.store.sqlstore import SqlStore

AMY = "amy@example.com"


async def test_exclusive_across_connections(store: SqlStore) -> None:
    async with sibling(store) as other_store:
        here, there = MailboxLocks(store), MailboxLocks(other_store)
        assert await here.acquire(AMY, "node-a:1", 60) is True
        assert await there.acquire("Amy@Example.COM", "node-b:1", 60) is False
        assert await there.acquire("bob@example.com", "node-b:1", 60) is True  # other account
        assert await here.acquire(AMY, "node-a:1", 60) is True  # the holder again
        await there.release(AMY, "node-b:1")  # not the holder: nothing happens
        assert await there.acquire(AMY, "node-b:2", 60) is False
        await here.release(AMY, "node-a:1")
        assert await there.acquire(AMY, "node-b:2", 60) is True


async def test_racing_acquirers_get_one_lock(store: SqlStore) -> None:
    async with sibling(store) as other_store:
        stores = [store, other_store] * 10
        results = await asyncio.gather(
            *(MailboxLocks(s).acquire(AMY, f"holder-{i}", 60) for i, s in enumerate(stores))
        )
    assert results.count(True) == 1


async def test_expired_lock_is_taken_over_and_refresh(store: SqlStore, clock: FakeClock) -> None:
    async with sibling(store) as other_store:  # shares the fake clock
        here, there = MailboxLocks(store), MailboxLocks(other_store)
        assert await here.acquire(AMY, "a", 10)
        clock.advance(9)
        assert await here.refresh(AMY, "a", 10) is True  # now good until +19
        clock.advance(9)
        assert await there.acquire(AMY, "b", 10) is False
        clock.advance(1)
        assert await there.acquire(AMY, "b", 10) is True  # expired: taken over
        assert await here.refresh(AMY, "a", 10) is False  # "a" knows it lost it
        assert await here.acquire(AMY, "a", 10) is False


async def test_bad_arguments(store: SqlStore) -> None:
    locks = MailboxLocks(store)
    with pytest.raises(ValueError):
        await locks.acquire(AMY, "", 10)
    with pytest.raises(ValueError):
        await locks.acquire(AMY, "a", 0)
