"""FolderWatcher on both engines: wakes on changes made through another store connection,
times out, polls once per interval for every folder together and only while someone waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import sibling

from hayate.mailbox.service import StoreMailboxes
from hayate.mailbox.watch import FolderWatcher
from hayate.store.sqlstore import SqlStore

INTERVAL = 0.05


@pytest.fixture
async def watcher(store: SqlStore) -> AsyncIterator[FolderWatcher]:
    watching = FolderWatcher(store, INTERVAL)
    watching.start()
    yield watching
    await watching.stop()


async def test_a_delivery_by_another_connection_wakes_the_waiter(
    store: SqlStore, amy: StoreMailboxes, watcher: FolderWatcher
) -> None:
    inbox = await amy.folder("INBOX")
    modseq, uidnext = await amy.highestmodseq(inbox)
    async with sibling(store) as other:
        waiting = asyncio.create_task(watcher.wait_change(inbox.id, modseq, uidnext, 5.0))
        await asyncio.sleep(INTERVAL * 2)
        assert not waiting.done()
        started = time.monotonic()
        await other.deliver(AMY, b"new mail")
        assert await asyncio.wait_for(waiting, 1.0) is True
        assert time.monotonic() - started < 1.0


async def test_a_flag_change_elsewhere_wakes_the_waiter(
    store: SqlStore, amy: StoreMailboxes, watcher: FolderWatcher
) -> None:
    await amy.append("INBOX", b"x")
    inbox = await amy.folder("INBOX")
    modseq, uidnext = await amy.highestmodseq(inbox)
    async with sibling(store) as other:
        elsewhere = StoreMailboxes(other, AMY)
        waiting = asyncio.create_task(watcher.wait_change(inbox.id, modseq, uidnext, 5.0))
        await elsewhere.store_flags(inbox, ((1, 1),), "add", ["\\Seen"])
        assert await asyncio.wait_for(waiting, 1.0) is True


async def test_timeout_without_change(amy: StoreMailboxes, watcher: FolderWatcher) -> None:
    inbox = await amy.folder("INBOX")
    modseq, uidnext = await amy.highestmodseq(inbox)
    started = time.monotonic()
    assert await watcher.wait_change(inbox.id, modseq, uidnext, 0.3) is False
    assert 0.25 < time.monotonic() - started < 1.0
    assert watcher.watched == 0


async def test_stale_knowledge_wakes_at_the_next_poll(
    amy: StoreMailboxes, watcher: FolderWatcher
) -> None:
    inbox = await amy.folder("INBOX")
    await amy.append("INBOX", b"already there")
    assert await watcher.wait_change(inbox.id, inbox.highestmodseq, inbox.uidnext, 2.0)


async def test_one_query_per_interval_for_all_folders_and_none_when_idle(
    amy: StoreMailboxes, watcher: FolderWatcher
) -> None:
    folders = await amy.folders()
    await asyncio.sleep(INTERVAL * 4)
    assert watcher.polls == 0  # nobody waits: no polling
    waits = [
        watcher.wait_change(f.id, f.highestmodseq, f.uidnext, INTERVAL * 10.5)
        for f in folders for _ in range(5)
    ]
    assert await asyncio.gather(*waits) == [False] * len(waits)
    assert 5 <= watcher.polls <= 11  # 30 waiters on 6 folders: one query per interval
    polls = watcher.polls
    await asyncio.sleep(INTERVAL * 4)
    assert watcher.polls - polls <= 1


async def test_notify_wakes_at_once_and_deleting_a_folder_wakes(
    amy: StoreMailboxes, store: SqlStore
) -> None:
    slow = FolderWatcher(store, interval=30.0)  # polling will not come to the rescue
    slow.start()
    try:
        inbox = await amy.folder("INBOX")
        waiting = asyncio.create_task(slow.wait_change(inbox.id, 1, 1, 5.0))
        await asyncio.sleep(0.01)
        slow.notify(inbox.id)
        assert await asyncio.wait_for(waiting, 0.5) is True
    finally:
        await slow.stop()
    fast = FolderWatcher(store, INTERVAL)
    try:
        junk = await amy.folder("Junk")
        waiting = asyncio.create_task(
            fast.wait_change(junk.id, junk.highestmodseq, junk.uidnext, 5.0)
        )
        await amy.delete_folder("Junk")
        assert await asyncio.wait_for(waiting, 1.0) is True  # started by wait_change
    finally:
        await fast.stop()


async def test_stop_releases_waiters(amy: StoreMailboxes, watcher: FolderWatcher) -> None:
    inbox = await amy.folder("INBOX")
    waiting = asyncio.create_task(watcher.wait_change(inbox.id, 1, 1, 5.0))
    await asyncio.sleep(0.01)
    await watcher.stop()
    assert await asyncio.wait_for(waiting, 0.5) is False
    assert await watcher.wait_change(inbox.id, 1, 1, 5.0) is False
