"""Bounded expunge tombstones (schema version 5) on both engines, with a small limit patched
in: pruning keeps the newest tombstones and raises the folder's vanished floor; changes
since a modseq below the floor report every UID the folder no longer holds, above it exactly
the recent expunges; MOVE, retention and an INBOX rename prune too; a version-4 database
keeps its messages and tombstones through the migration."""

from __future__ import annotations

import pytest
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import raw_rows

from hayate.mailbox.model import Folder
from hayate.mailbox.service import StoreMailboxes
from hayate.store import ops, tombstones
from hayate.store.schema import MIGRATIONS
from hayate.store.sqlstore import SqlStore

KEPT = 5
SLACK = 2


@pytest.fixture(autouse=True)
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tombstones, "TOMBSTONES_KEPT", KEPT)
    monkeypatch.setattr(tombstones, "TOMBSTONE_SLACK", SLACK)


def _message(n: int) -> bytes:
    return f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()


async def _fill(amy: StoreMailboxes, count: int, name: str = "INBOX") -> Folder:
    for n in range(1, count + 1):
        await amy.append(name, _message(n))
    return await amy.folder(name)


async def _remove_one_by_one(amy: StoreMailboxes, folder: Folder, uids: list[int]
                             ) -> dict[int, int]:
    """Expunge each UID in its own transaction; the folder's modseq after each."""
    after: dict[int, int] = {}
    for uid in uids:
        assert await amy.remove(folder, ((uid, uid),)) == [uid]
        after[uid] = (await amy.highestmodseq(folder))[0]
    return after


async def _tombstones(store: SqlStore, folder: Folder) -> list[int]:
    rows = await raw_rows(
        store, "SELECT uid FROM expunged WHERE mailbox_id = ? ORDER BY uid", (folder.id,)
    )
    return [int(r[0]) for r in rows]


async def _floor_and_count(store: SqlStore, folder: Folder) -> tuple[int, int]:
    [(floor, count)] = await raw_rows(
        store, "SELECT vanished_floor, tombstones FROM mailboxes WHERE id = ?", (folder.id,)
    )
    return int(floor), int(count)


async def test_pruning_keeps_the_newest_and_raises_the_floor(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    inbox = await _fill(amy, 20)
    modseqs = await _remove_one_by_one(amy, inbox, list(range(1, 8)))
    # 7 = KEPT + SLACK: not over the limit yet, nothing pruned.
    assert await _tombstones(store, inbox) == list(range(1, 8))
    assert await _floor_and_count(store, inbox) == (0, 7)
    modseqs |= await _remove_one_by_one(amy, inbox, [8])
    # Over it: the newest 5 stay; the floor is the expunge of UID 3, the newest pruned.
    assert await _tombstones(store, inbox) == [4, 5, 6, 7, 8]
    assert await _floor_and_count(store, inbox) == (modseqs[3], 5)
    modseqs |= await _remove_one_by_one(amy, inbox, [9, 10, 11])
    assert await _tombstones(store, inbox) == [7, 8, 9, 10, 11]
    assert await _floor_and_count(store, inbox) == (modseqs[6], 5)


async def test_changes_below_the_floor_are_the_complement_above_it_the_tombstones(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    inbox = await _fill(amy, 20)
    start = (await amy.highestmodseq(inbox))[0]
    modseqs = await _remove_one_by_one(amy, inbox, [2, 3, 5, 8, 9, 13, 14, 20])
    floor, _ = await _floor_and_count(store, inbox)
    assert floor == modseqs[5]  # 8 tombstones > 7: the newest 5 (8, 9, 13, 14, 20) stay
    await amy.store_flags(inbox, ((10, 10),), "add", ["\\Seen"])
    await amy.append("INBOX", _message(21))  # UID 21, present
    modseq, uidnext = await amy.highestmodseq(inbox)

    below = await amy.changes_since(inbox, start)
    assert below.vanished == [2, 3, 5, 8, 9, 13, 14, 20]
    assert [m.uid for m in below.changed] == [10, 21]
    assert (below.highestmodseq, below.uidnext) == (modseq, uidnext)
    # Below the floor also the UIDs gone before the asked modseq: a superset, all gone.
    assert (await amy.changes_since(inbox, floor - 1)).vanished == [
        2, 3, 5, 8, 9, 13, 14, 20]
    assert (await amy.changes_since(inbox, 0)).vanished == [2, 3, 5, 8, 9, 13, 14, 20]
    # At or above the floor: exactly the tombstones newer than the modseq.
    at = await amy.changes_since(inbox, floor)
    assert at.vanished == [8, 9, 13, 14, 20]
    assert [m.uid for m in at.changed] == [10, 21]
    assert (await amy.changes_since(inbox, modseqs[13])).vanished == [14, 20]
    assert (await amy.changes_since(inbox, modseq)).vanished == []


async def test_an_emptied_folder_below_the_floor_vanishes_every_uid(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    inbox = await _fill(amy, 9)
    await _remove_one_by_one(amy, inbox, list(range(1, 10)))
    assert await _floor_and_count(store, inbox) != (0, 9)
    changes = await amy.changes_since(inbox, 0)
    assert changes.vanished == list(range(1, 10))
    assert changes.changed == []
    assert changes.uidnext == 10


async def test_move_retention_and_inbox_rename_prune_too(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    inbox = await _fill(amy, 30)
    for uid in range(1, 9):  # 8 moves, one transaction each
        await amy.move(inbox, ((uid, uid),), "Archive")
    assert await _tombstones(store, inbox) == [4, 5, 6, 7, 8]
    assert (await amy.changes_since(inbox, 0)).vanished == list(range(1, 9))

    assert await store.expunge_older(inbox.id, 2e9, 1) == 1  # retention, one at a time
    assert await store.expunge_older(inbox.id, 2e9, 1) == 1
    assert await store.expunge_older(inbox.id, 2e9, 1) == 1
    assert await _tombstones(store, inbox) == [7, 8, 9, 10, 11]
    assert (await amy.changes_since(inbox, 0)).vanished == list(range(1, 12))

    # INBOX renamed away: one tombstone per message it held (19), pruned to the newest 5
    # (all of one modseq, so none of them can stay).
    await amy.rename_folder("INBOX", "Old")
    assert await _tombstones(store, inbox) == []
    floor, count = await _floor_and_count(store, inbox)
    assert count == 0 and floor == (await amy.highestmodseq(inbox))[0]
    assert (await amy.changes_since(inbox, 0)).vanished == list(range(1, 31))
    old = await amy.folder("Old")
    # The new folder (a UIDVALIDITY of its own) has no tombstones and no floor.
    assert (await amy.changes_since(old, 0)).vanished == []
    assert [m.uid for m in (await amy.changes_since(old, 0)).changed] == list(range(12, 31))


async def test_migration_from_version_4_keeps_messages_and_tombstones(
    blank_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(ops, "MIGRATIONS", MIGRATIONS[:4])
        assert await blank_store.migrate() == [1, 2, 3, 4]
        await blank_store.add_account(AMY, "pw")
        for n in range(1, 11):
            assert await blank_store.deliver(AMY, _message(n)) == n
    [(inbox_id,)] = await raw_rows(blank_store, "SELECT id FROM mailboxes WHERE name = 'INBOX'")
    # What version 4 stored for eight expunges (UIDs 1-8, modseqs 11-18).
    for uid in range(1, 9):
        await raw_rows(blank_store, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?",
                       (inbox_id, uid))
        await raw_rows(blank_store,
                       "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                       (inbox_id, uid, 10 + uid))
    await raw_rows(blank_store, "UPDATE mailboxes SET highestmodseq = 18 WHERE id = ?",
                   (inbox_id,))

    assert await blank_store.migrate() == [5]
    assert await blank_store.migrate() == []
    amy = StoreMailboxes(blank_store, AMY)
    inbox = await amy.folder("INBOX")
    assert await _floor_and_count(blank_store, inbox) == (0, 8)
    assert await amy.bodies(inbox, [9, 10]) == {9: _message(9), 10: _message(10)}
    assert (await amy.changes_since(inbox, 14)).vanished == [5, 6, 7, 8]
    # The migrated count drives the next prune: 9 tombstones > 7, the newest 5 stay.
    assert await amy.remove(inbox, ((9, 9),)) == [9]
    assert await _tombstones(blank_store, inbox) == [5, 6, 7, 8, 9]
    assert await _floor_and_count(blank_store, inbox) == (14, 5)
    assert (await amy.changes_since(inbox, 13)).vanished == list(range(1, 10))
    assert (await amy.changes_since(inbox, 14)).vanished == [5, 6, 7, 8, 9]
