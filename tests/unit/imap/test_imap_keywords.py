"""The keywords in use per folder (SELECT's FLAGS) and their cache, over a real SQLite store
through StoreMailboxes: what each SELECT costs (no query, the changes only, a full scan)
and that the answer stays right as flags change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.clock import FakeClock, clock
from tests.support.store import sqlite_store

from hayate.imap import keywords as K
from hayate.mailbox.model import Changes, Folder
from hayate.mailbox.service import StoreMailboxes

__all__ = ["clock"]

AMY = "amy@example.com"


class CountingMailboxes(StoreMailboxes):
    """The real service, counting the reads the cache makes."""

    def __init__(self, store: object, address: str) -> None:
        super().__init__(store, address)  # type: ignore[arg-type]
        self.scans = 0
        self.change_reads = 0

    async def keywords(self, folder: Folder) -> list[str]:
        self.scans += 1
        return await super().keywords(folder)

    async def changes_since(self, folder: Folder, modseq: int) -> Changes:
        self.change_reads += 1
        return await super().changes_since(folder, modseq)


@pytest.fixture
async def amy(tmp_path: Path, clock: FakeClock) -> AsyncIterator[CountingMailboxes]:
    async with sqlite_store(tmp_path / "hayate.db", clock) as store:
        await store.add_account(AMY, "pw")
        box = CountingMailboxes(store, AMY)
        await box.append("INBOX", b"Subject: a\r\n\r\nx\r\n", ["\\Seen", "$Work"])
        await box.append("INBOX", b"Subject: b\r\n\r\nx\r\n", ["later", "$WORK"])
        await box.append("INBOX", b"Subject: c\r\n\r\nx\r\n", [])
        yield box


async def test_full_scan_then_cached_then_incremental(amy: CountingMailboxes) -> None:
    cache = K.KeywordCache()
    inbox = await amy.folder("INBOX")
    assert await cache.keywords(amy, inbox) == ["$Work", "later"]
    assert (amy.scans, amy.change_reads, cache.full_scans) == (1, 0, 1)

    assert await cache.keywords(amy, await amy.folder("INBOX")) == ["$Work", "later"]
    assert (amy.scans, amy.change_reads) == (1, 0)  # nothing changed: no query

    await amy.store_flags(inbox, ((3, 3),), "add", ["Urgent", "\\Flagged"])
    await amy.store_flags(inbox, ((1, 1),), "remove", ["$Work"])
    assert await cache.keywords(amy, await amy.folder("INBOX")) == ["$Work", "Urgent", "later"]
    assert (amy.scans, amy.change_reads, cache.incremental) == (1, 1, 1)

    # A fresh cache sees what is there now; the old one keeps keywords once seen.
    assert await K.KeywordCache().keywords(amy, await amy.folder("INBOX")) == [
        "$WORK", "Urgent", "later"]  # message 2 still has it, spelled so
    await amy.store_flags(inbox, ((2, 2),), "remove", ["$WORK"])
    assert await K.KeywordCache().keywords(amy, await amy.folder("INBOX")) == [
        "Urgent", "later"]


async def test_a_long_way_behind_means_a_full_scan(
    amy: CountingMailboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = K.KeywordCache()
    inbox = await amy.folder("INBOX")
    await cache.keywords(amy, inbox)
    monkeypatch.setattr(K, "INCREMENTAL_LIMIT", 1)
    await amy.store_flags(inbox, ((1, 1),), "add", ["One"])
    await amy.store_flags(inbox, ((2, 2),), "add", ["Two"])
    assert await cache.keywords(amy, await amy.folder("INBOX")) == [
        "$Work", "One", "Two", "later"]
    assert (cache.full_scans, cache.incremental, amy.change_reads) == (2, 0, 0)


async def test_entries_follow_uidvalidity_and_stay_bounded(amy: CountingMailboxes) -> None:
    cache = K.KeywordCache(size=1)
    inbox = await amy.folder("INBOX")
    await amy.create_folder("Work")
    await amy.append("Work", b"Subject: w\r\n\r\nx\r\n", ["Project"])
    work = await amy.folder("Work")
    assert await cache.keywords(amy, inbox) == ["$Work", "later"]
    assert await cache.keywords(amy, work) == ["Project"]
    assert await cache.keywords(amy, inbox) == ["$Work", "later"]
    assert cache.full_scans == 3  # one entry only: INBOX was dropped for Work
    # A folder deleted and made again under the same name is a new folder.
    await amy.delete_folder("Work")
    await amy.create_folder("Work")
    assert await cache.keywords(amy, await amy.folder("Work")) == []


async def test_an_empty_folder_has_no_keywords(amy: CountingMailboxes) -> None:
    assert await K.scan_keywords(amy, await amy.folder("Sent")) == {}
    found: dict[str, str] = {}
    K.add_keywords(found, [frozenset({"\\Seen", "Todo"}), frozenset({"todo", "$X"})])
    assert sorted(found.values()) in (["$X", "Todo"], ["$X", "todo"])
