"""Flags, expunge, copy and move through StoreMailboxes on both engines: modseqs, CONDSTORE
UNCHANGEDSINCE, tombstones, quota, UIDPLUS pairs, atomic moves, UIDs never reused."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import raw_rows

from hayate.mailbox.model import (
    CopyResult,
    FolderNotFound,
    MailboxError,
    OverQuota,
)
from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlstore import SqlStore


async def _inbox_with(amy: StoreMailboxes, count: int) -> None:
    for i in range(1, count + 1):
        await amy.append("INBOX", b"message %d" % i)


async def test_store_flags_modes_and_modseqs(amy: StoreMailboxes) -> None:
    await _inbox_with(amy, 3)
    inbox = await amy.folder("INBOX")
    changed, failed = await amy.store_flags(inbox, ((1, 2),), "add", ["\\seen", "$Work"])
    assert failed == [] and [m.uid for m in changed] == [1, 2]
    assert {m.modseq for m in changed} == {5}
    assert all(m.flags == frozenset({"\\Seen", "$Work"}) for m in changed)
    # Adding what is there changes nothing, and the modseq stays where it was.
    changed, _ = await amy.store_flags(inbox, ((1, 2),), "add", ["\\SEEN", "$work"])
    assert changed == [] and (await amy.highestmodseq(inbox))[0] == 5
    changed, _ = await amy.store_flags(inbox, ((2, 3),), "remove", ["$WORK"])
    assert [(m.uid, m.flags, m.modseq) for m in changed] == [(2, frozenset({"\\Seen"}), 6)]
    changed, _ = await amy.store_flags(inbox, ((1, 3),), "set", ["\\Flagged", "\\Recent"])
    assert [m.uid for m in changed] == [1, 2, 3]
    infos = await amy.messages(inbox, ((1, 3),))
    assert [m.flags for m in infos] == [frozenset({"\\Flagged"})] * 3
    assert [m.modseq for m in infos] == [7, 7, 7]
    assert await amy.store_flags(inbox, ((10, 20),), "add", ["\\Seen"]) == ([], [])
    with pytest.raises(MailboxError):
        await amy.store_flags(inbox, ((1, 1),), "add", ["\\Bogus"])


async def test_unchanged_since(amy: StoreMailboxes) -> None:
    await _inbox_with(amy, 3)  # modseqs 2, 3, 4
    inbox = await amy.folder("INBOX")
    changed, failed = await amy.store_flags(
        inbox, ((1, 3),), "add", ["\\Seen"], unchanged_since=3
    )
    assert [m.uid for m in changed] == [1, 2] and failed == [3]
    assert [m.flags for m in await amy.messages(inbox, ((3, 3),))] == [frozenset()]
    # Someone else changes message 1; a client that read it earlier is refused.
    changed, failed = await amy.store_flags(
        inbox, ((1, 1),), "remove", ["\\Seen"], unchanged_since=4
    )
    assert changed == [] and failed == [1]
    changed, failed = await amy.store_flags(inbox, ((1, 1),), "remove", ["\\Seen"],
                                            unchanged_since=0)
    assert changed == [] and failed == [1]


async def test_expunge_only_deleted_frees_quota_and_leaves_tombstones(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await _inbox_with(amy, 5)
    inbox = await amy.folder("INBOX")
    used = (await amy.quota()).used
    await amy.store_flags(inbox, ((2, 2), (4, 5)), "add", ["\\Deleted"])
    assert await amy.expunge(inbox, ((1, 4),)) == [2, 4]  # UID EXPUNGE 1:4
    modseq = (await amy.highestmodseq(inbox))[0]
    assert list(await amy.uids(inbox)) == [1, 3, 5]
    assert (await amy.quota()).used == used - 2 * len(b"message 2")
    assert await amy.expunge(inbox) == [5]
    assert await amy.expunge(inbox) == []
    assert (await amy.highestmodseq(inbox))[0] == modseq + 1  # an empty expunge: no change
    rows = await raw_rows(store, "SELECT uid, modseq FROM expunged ORDER BY uid")
    assert rows == [(2, modseq), (4, modseq), (5, modseq + 1)]
    # UIDs are never reused.
    assert await amy.append("INBOX", b"new") == (inbox.uidvalidity, 6)
    assert (await amy.status("INBOX")).messages == 3


async def test_copy_keeps_flags_and_dates_and_returns_uidplus_pairs(
    amy: StoreMailboxes,
) -> None:
    await amy.append("Archive", b"old")  # the archive already has UID 1
    await amy.append("INBOX", b"a", flags=["\\Seen", "$Work"], internaldate=100.0)
    await amy.append("INBOX", b"b", internaldate=200.0)
    await amy.append("INBOX", b"c", flags=["\\Deleted"], internaldate=300.0)
    inbox, archive = await amy.folder("INBOX"), await amy.folder("Archive")
    result = await amy.copy(inbox, ((1, 1), (3, 9)), "Archive")
    assert result == CopyResult(archive.uidvalidity, [(1, 2), (3, 3)])
    copied = await amy.messages(archive, ((2, 3),))
    assert [(m.flags, m.internaldate, m.size) for m in copied] == [
        (frozenset({"\\Seen", "$Work"}), 100.0, 1), (frozenset({"\\Deleted"}), 300.0, 1),
    ]
    assert await amy.bodies(archive, [2, 3]) == {2: b"a", 3: b"c"}
    assert list(await amy.uids(inbox)) == [1, 2, 3]  # the originals stay
    assert (await amy.quota()).used == 3 + 3 + 2
    assert (await amy.status("Archive")).recent == 3  # copies are \\Recent
    assert await amy.copy(inbox, ((7, 9),), "Archive") == CopyResult(archive.uidvalidity, [])
    with pytest.raises(FolderNotFound):
        await amy.copy(inbox, ((1, 1),), "Nope")
    with pytest.raises(FolderNotFound):
        await amy.copy(inbox, (), "Nope")


async def test_copy_into_the_same_folder(amy: StoreMailboxes) -> None:
    await _inbox_with(amy, 2)
    inbox = await amy.folder("INBOX")
    result = await amy.copy(inbox, ((1, 2**32 - 1),), "INBOX")
    assert result.pairs == [(1, 3), (2, 4)]
    assert await amy.bodies(inbox, [3, 4]) == {3: b"message 1", 4: b"message 2"}
    moved = await amy.move(inbox, ((1, 1),), "INBOX")
    assert moved.pairs == [(1, 5)]
    assert list(await amy.uids(inbox)) == [2, 3, 4, 5]


async def test_copy_over_quota_is_refused_and_stores_nothing(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await _inbox_with(amy, 3)  # 3 x 9 bytes
    await store.set_quota(AMY, 50)
    inbox, trash = await amy.folder("INBOX"), await amy.folder("Trash")
    with pytest.raises(OverQuota):
        await amy.copy(inbox, ((1, 3),), "Trash")
    assert list(await amy.uids(trash)) == []
    assert (await amy.highestmodseq(trash)) == (1, 1)
    assert (await amy.quota()).used == 27
    # A move does not add bytes, so it is allowed at any fill.
    await store.set_quota(AMY, 27)
    result = await amy.move(inbox, ((1, 3),), "Trash")
    assert [new for _, new in result.pairs] == [1, 2, 3]
    assert (await amy.quota()).used == 27


async def test_move_is_one_transaction(store: SqlStore, amy: StoreMailboxes) -> None:
    await _inbox_with(amy, 4)
    inbox, junk = await amy.folder("INBOX"), await amy.folder("Junk")
    await amy.store_flags(inbox, ((2, 2),), "add", ["\\Flagged"])
    before = (await amy.highestmodseq(inbox))[0]
    result = await amy.move(inbox, ((2, 3),), "Junk")
    assert result == CopyResult(junk.uidvalidity, [(2, 1), (3, 2)])
    assert list(await amy.uids(inbox)) == [1, 4]
    assert [m.flags for m in await amy.messages(junk, ((1, 2),))] == [
        frozenset({"\\Flagged"}), frozenset(),
    ]
    changes = await amy.changes_since(inbox, before)
    assert changes.vanished == [2, 3] and changes.changed == []
    # A move that fails half way (the target vanishes) leaves the source untouched.
    await amy.delete_folder("Junk")
    with pytest.raises(FolderNotFound):
        await amy.move(inbox, ((1, 4),), "Junk")
    assert list(await amy.uids(inbox)) == [1, 4]
    # Two moves racing for the same messages: each message lands exactly once.
    await amy.create_folder("A")
    await amy.create_folder("B")
    results = await asyncio.gather(
        amy.move(inbox, ((1, 4),), "A"),
        StoreMailboxes(store, AMY).move(inbox, ((1, 4),), "B"),
    )
    assert sorted(len(r.pairs) for r in results) == [0, 2]
    a, b = await amy.folder("A"), await amy.folder("B")
    assert len(await amy.uids(a)) + len(await amy.uids(b)) == 2
    assert (await amy.quota()).used == 2 * len(b"message 1")


async def test_writes_to_a_deleted_folder(amy: StoreMailboxes) -> None:
    await amy.create_folder("Gone")
    await amy.append("Gone", b"x")
    gone = await amy.folder("Gone")
    await amy.delete_folder("Gone")
    with pytest.raises(FolderNotFound):
        await amy.store_flags(gone, ((1, 1),), "add", ["\\Seen"])
    with pytest.raises(FolderNotFound):
        await amy.expunge(gone)
    with pytest.raises(FolderNotFound):
        await amy.copy(gone, ((1, 1),), "INBOX")
    assert list(await amy.uids(gone)) == []
    assert await amy.body(gone, 1) is None


async def test_another_accounts_folder_cannot_be_changed(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await store.add_account("bob@example.com", "pw")
    bob = StoreMailboxes(store, "bob@example.com")
    await bob.append("INBOX", b"bob's")
    bobs_inbox = await bob.folder("INBOX")
    with pytest.raises(FolderNotFound):
        await amy.store_flags(bobs_inbox, ((1, 1),), "add", ["\\Deleted"])
    with pytest.raises(FolderNotFound):
        await amy.move(bobs_inbox, ((1, 1),), "INBOX")
    assert list(await bob.uids(bobs_inbox)) == [1]


async def test_remove_expunges_whatever_the_flags(amy: StoreMailboxes) -> None:
    for body in (b"a", b"b", b"c"):
        await amy.append("INBOX", body)
    inbox = await amy.folder("INBOX")
    await amy.store_flags(inbox, ((3, 3),), "add", ["\\Deleted"])
    used = (await amy.quota()).used
    assert await amy.remove(inbox, ((1, 2), (9, 9))) == [1, 2]
    assert list(await amy.uids(inbox)) == [3]  # the \Deleted one outside the set stays
    assert (await amy.quota()).used == used - 2
    changes = await amy.changes_since(inbox, 0)
    assert changes.vanished == [1, 2]
