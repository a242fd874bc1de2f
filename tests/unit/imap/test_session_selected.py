"""``SelectedFolder``: sequence numbers ↔ UIDs and the untagged updates its polls produce,
against a real SQLite store through ``StoreMailboxes`` (two instances: "us" and "them")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.imap.imap_harness import message
from tests.support.clock import FakeClock
from tests.support.store import sqlite_store

from hayate.imap.selected import SelectedFolder
from hayate.mailbox.model import Mailboxes
from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlite import SqliteStore

USER = "sel@hayate.test"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with sqlite_store(tmp_path / "h.db", FakeClock()) as opened:
        await opened.add_account(USER, "pw")
        yield opened


async def open_view(mb: Mailboxes, *, readonly: bool = False, qresync: bool = False
                    ) -> SelectedFolder:
    folder = await mb.folder("INBOX")
    uids = await mb.uids(folder)
    recent = None if readonly else await mb.claim_recent(folder)
    return SelectedFolder(folder, uids, readonly=readonly, modseq=folder.highestmodseq,
                          uidnext=folder.uidnext, recent_from=recent, qresync=qresync)


async def fill(store: SqliteStore, count: int) -> list[int]:
    return [await store.deliver(USER, message(f"m{n}")) for n in range(count)]


async def test_lookups(store: SqliteStore) -> None:
    uids = await fill(store, 6)
    them = StoreMailboxes(store, USER)
    folder = await them.folder("INBOX")
    await them.store_flags(folder, ((uids[1], uids[2]),), "add", ["\\Deleted"])
    await them.expunge(folder)
    view = await open_view(them)
    assert list(view.uids) == [1, 4, 5, 6] and view.exists == 4
    assert view.seq_of(4) == 2 and view.seq_of(2) is None
    assert view.seq_ranges_to_uids([(2, 3)]) == ((4, 5),)
    assert view.seq_ranges_to_uids([(1, 1), (3, 9)]) == ((1, 1), (5, 6))
    assert view.clip_uid_ranges([(5, 100)]) == ((5, 6),)
    assert view.clip_uid_ranges([(7, 9)]) == ()
    assert view.uids_in([(2, 5)]) == [4, 5]
    assert view.count_in([(1, 6)]) == 4
    assert view.recent_count() == 4 and view.is_recent(6)


async def test_poll_reports_new_changed_and_expunged(store: SqliteStore) -> None:
    await fill(store, 4)
    us, them = StoreMailboxes(store, USER), StoreMailboxes(store, USER)
    view = await open_view(us)
    assert await view.poll(us, allow_expunge=True) == []
    folder = await them.folder("INBOX")
    await them.store_flags(folder, ((2, 2),), "add", ["\\Flagged"])
    await them.store_flags(folder, ((1, 1), (3, 3)), "add", ["\\Deleted"])
    await them.expunge(folder)
    await store.deliver(USER, message("new"))
    lines = await view.poll(us, allow_expunge=True)
    # Ascending, each number lowered by the expunges before it: seq 1, then old seq 3.
    assert lines == [b"* 1 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n",
                     b"* 3 RECENT\r\n", b"* 1 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n"]
    assert list(view.uids) == [2, 4, 5]


async def test_expunges_wait_until_allowed(store: SqliteStore) -> None:
    await fill(store, 3)
    us, them = StoreMailboxes(store, USER), StoreMailboxes(store, USER)
    view = await open_view(us)
    folder = await them.folder("INBOX")
    await them.store_flags(folder, ((2, 2),), "add", ["\\Deleted"])
    await them.expunge(folder)
    assert await view.poll(us, allow_expunge=False) == []
    assert list(view.uids) == [1, 2, 3] and view.hidden_expunges == {2}
    await them.store_flags(folder, ((2, 3),), "add", ["\\Seen"])  # 2 is gone already
    later = await view.poll(us, allow_expunge=False)
    assert later == [b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\r\n"]
    assert await view.poll(us, allow_expunge=True) == [b"* 2 EXPUNGE\r\n"]
    assert list(view.uids) == [1, 3] and not view.hidden_expunges


async def test_own_changes_are_not_reported_twice(store: SqliteStore) -> None:
    await fill(store, 2)
    us = StoreMailboxes(store, USER)
    view = await open_view(us)
    changed, _ = await us.store_flags(view.folder, ((1, 1),), "add", ["\\Answered"])
    view.note_reported(changed)
    assert await view.poll(us, allow_expunge=True) == []
    # A later change by someone else to the same message is reported.
    them = StoreMailboxes(store, USER)
    await them.store_flags(view.folder, ((1, 1),), "add", ["$Later"])
    lines = await view.poll(us, allow_expunge=True)
    assert lines == [view.flags_response(),  # $Later is a new keyword: FLAGS first
                     b"* 1 FETCH (UID 1 FLAGS (\\Answered $Later \\Recent))\r\n"]
    assert view.flags_response().startswith(b"* FLAGS (\\Answered \\Flagged \\Deleted "
                                            b"\\Seen \\Draft $Later)\r\n")


async def test_qresync_and_condstore_forms(store: SqliteStore) -> None:
    await fill(store, 5)
    us, them = StoreMailboxes(store, USER), StoreMailboxes(store, USER)
    view = await open_view(us, readonly=True, qresync=True)
    view.condstore = True
    folder = await them.folder("INBOX")
    await them.store_flags(folder, ((1, 2), (4, 4)), "add", ["\\Deleted"])
    await them.expunge(folder)
    await them.store_flags(folder, ((5, 5),), "add", ["\\Seen"])
    lines = await view.poll(us, allow_expunge=True)
    assert lines[0] == b"* VANISHED 1:2,4\r\n"
    assert lines[1].startswith(b"* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (")
    assert view.recent_count() == 0  # read-only: nothing claimed


async def test_readonly_view_does_not_claim_recent(store: SqliteStore) -> None:
    await fill(store, 1)
    us = StoreMailboxes(store, USER)
    examined = await open_view(us, readonly=True)
    await store.deliver(USER, message("later"))
    assert await examined.poll(us, allow_expunge=True) == [b"* 2 EXISTS\r\n", b"* 0 RECENT\r\n"]
    selected = await open_view(StoreMailboxes(store, USER))
    assert selected.recent_count() == 2
