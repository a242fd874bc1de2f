"""Message bodies in their own table (schema version 4) on both engines: a version-3
database keeps every body through the migration, COPY shares one body, a body goes with its
last reference (expunge, retention, POP3 delete, folder and account deletion, also when two
connections drop the last two references at once), and on SQLite a flag change leaves the
body's pages alone (the WAL grows by a few pages, not by the body)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from tests.support.clock import FakeClock
from tests.support.store import fast_passwords
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import raw_rows, sibling

from hayate.mailbox.service import StoreMailboxes
from hayate.store import ops
from hayate.store.schema import MIGRATIONS
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore

BOB = "bob@example.com"
BINARY = bytes(range(256)) * 40  # every byte value, NUL included


async def _body_rows(store: SqlStore) -> int:
    [(count,)] = await raw_rows(store, "SELECT count(*) FROM message_bodies")
    return int(count)


async def test_migration_from_version_3_keeps_every_body(
    blank_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(ops, "MIGRATIONS", MIGRATIONS[:3])
        assert await blank_store.migrate() == [1, 2, 3]
        await blank_store.add_account(AMY, "pw")
    [(inbox,)] = await raw_rows(blank_store, "SELECT id FROM mailboxes WHERE name = 'INBOX'")
    [(archive,)] = await raw_rows(
        blank_store, "SELECT id FROM mailboxes WHERE name = 'Archive'"
    )
    # What version 3 stored: bodies in the message rows, a copy holding its own.
    old = [
        (inbox, 1, b"Subject: one\r\n\r\nfirst\r\n", "\\Seen"),
        (inbox, 2, BINARY, ""),
        (inbox, 3, b"Subject: three\r\n\r\n" + b"x" * 300_000, "$Work"),
        (archive, 1, b"Subject: one\r\n\r\nfirst\r\n", "\\Seen"),
    ]
    for folder_id, uid, body, flags in old:
        await raw_rows(
            blank_store,
            "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, flags, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (folder_id, uid, uid + 1, 1_700_000_000.0 + uid, len(body), flags, body),
        )
    await raw_rows(
        blank_store, "UPDATE mailboxes SET uidnext = 4, highestmodseq = 4 WHERE id = ?", (inbox,)
    )
    await raw_rows(
        blank_store, "UPDATE mailboxes SET uidnext = 2, highestmodseq = 2 WHERE id = ?",
        (archive,),
    )

    assert await blank_store.migrate() == [4, 5]
    assert await blank_store.migrate() == []
    assert await _body_rows(blank_store) == len(old)
    [(columns,)] = await raw_rows(
        blank_store, "SELECT count(*) FROM messages WHERE body_id IS NULL"
    )
    assert columns == 0
    amy = StoreMailboxes(blank_store, AMY)
    for name, folder_id in (("INBOX", inbox), ("Archive", archive)):
        folder = await amy.folder(name)
        wanted = {uid: body for fid, uid, body, _ in old if fid == folder_id}
        assert await amy.bodies(folder, list(wanted)) == wanted
        infos = await amy.messages(folder, ((1, 10),))
        assert [(m.uid, m.size) for m in infos] == [(u, len(b)) for u, b in wanted.items()]
    # New bodies get ids after the migrated ones (PostgreSQL's sequence was moved on).
    uid = await blank_store.deliver(AMY, b"Subject: new\r\n\r\nafter\r\n")
    assert uid == 4
    assert await blank_store.fetch_message(AMY, "INBOX", 4) == b"Subject: new\r\n\r\nafter\r\n"
    assert await blank_store.fetch_message(AMY, "INBOX", 2) == BINARY
    assert await _body_rows(blank_store) == len(old) + 1


async def test_copy_shares_the_body_until_the_last_copy_goes(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await amy.append("INBOX", BINARY, ["\\Seen"])
    inbox = await amy.folder("INBOX")
    assert (await amy.copy(inbox, ((1, 1),), "Archive")).pairs == [(1, 1)]
    assert (await amy.copy(inbox, ((1, 1),), "INBOX")).pairs == [(1, 2)]
    assert await _body_rows(store) == 1
    # Quota still counts each copy, like before.
    assert (await amy.quota()).used == 3 * len(BINARY)

    await amy.store_flags(inbox, ((1, 1),), "add", ["\\Deleted"])
    assert await amy.expunge(inbox) == [1]
    assert await amy.body(inbox, 2) == BINARY
    archive = await amy.folder("Archive")
    assert await amy.body(archive, 1) == BINARY
    assert await _body_rows(store) == 1

    await amy.store_flags(inbox, ((2, 2),), "add", ["\\Deleted"])
    await amy.store_flags(archive, ((1, 1),), "add", ["\\Deleted"])
    assert await amy.expunge(inbox) == [2]
    assert await _body_rows(store) == 1
    assert await amy.expunge(archive) == [1]
    assert await _body_rows(store) == 0
    assert (await amy.quota()).used == 0


async def test_move_keeps_the_body_and_delete_folder_frees_only_its_own(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await amy.create_folder("Work")
    await amy.append("INBOX", b"shared body")
    await amy.append("INBOX", b"moved body")
    inbox = await amy.folder("INBOX")
    await amy.copy(inbox, ((1, 1),), "Work")
    await amy.move(inbox, ((2, 2),), "Work")
    assert await _body_rows(store) == 2
    work = await amy.folder("Work")
    assert await amy.bodies(work, [1, 2]) == {1: b"shared body", 2: b"moved body"}
    # Work holds the only reference to "moved body" and one of two to "shared body".
    await amy.delete_folder("Work")
    assert await _body_rows(store) == 1
    assert await amy.body(inbox, 1) == b"shared body"
    assert (await amy.quota()).used == len(b"shared body")


async def test_retention_pop3_delete_and_account_deletion_free_bodies(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await store.add_account(BOB, "pw")
    await store.deliver(BOB, b"bob keeps this")
    for i in range(3):
        await store.deliver(AMY, b"old %d" % i, internaldate=1000.0 + i)
    inbox = await amy.folder("INBOX")
    await amy.copy(inbox, ((3, 3),), "Archive")
    assert await _body_rows(store) == 4

    assert await store.expunge_older(inbox.id, before=1001.5, limit=10) == 2
    assert await _body_rows(store) == 2
    assert await store.delete_message(AMY, "INBOX", 3)
    assert await _body_rows(store) == 2  # Archive still has it
    assert await store.fetch_message(AMY, "Archive", 1) == b"old 2"

    await amy.append("Drafts", b"draft")
    assert await store.delete_account(AMY)
    assert await _body_rows(store) == 1
    assert await store.fetch_message(BOB, "INBOX", 1) == b"bob keeps this"
    assert not await store.delete_account(AMY)


async def test_two_connections_dropping_the_last_two_copies_free_the_body(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    rounds = 12
    inbox = await amy.folder("INBOX")
    for i in range(rounds):
        await amy.append("INBOX", b"round %d" % i, ["\\Deleted"])
    await amy.copy(inbox, ((1, rounds),), "Archive")
    archive = await amy.folder("Archive")
    assert await _body_rows(store) == rounds
    async with sibling(store) as other_store:
        other = StoreMailboxes(other_store, AMY)
        for uid in range(1, rounds + 1):
            # Same message, two folders, two connections, at once.
            await asyncio.gather(
                amy.expunge(inbox, ((uid, uid),)), other.expunge(archive, ((uid, uid),))
            )
            assert await _body_rows(store) == rounds - uid
    assert (await amy.quota()).used == 0


async def test_a_flag_change_does_not_rewrite_a_large_body(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "hayate.db"
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 4000  # 4 MB
    async with SqliteStore(path, passwords=fast_passwords(), clock=clock) as store:
        await store.migrate()
        await store.add_account(AMY, "pw")
        amy = StoreMailboxes(store, AMY)
        await amy.append("INBOX", body)
        inbox = await amy.folder("INBOX")
        wal = Path(f"{path}-wal")
        for flag in ("\\Seen", "$Label", "\\Flagged"):
            with sqlite3.connect(path) as conn:  # empty the WAL: what follows is the STORE's
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert os.path.getsize(wal) == 0
            changed, _ = await amy.store_flags(inbox, ((1, 1),), "add", [flag])
            assert [m.uid for m in changed] == [1]
            # A few pages (message row, indexes, folder row), not the body's thousand.
            assert 0 < os.path.getsize(wal) < 64 * 1024 < len(body) // 50
        assert await amy.body(inbox, 1) == body
