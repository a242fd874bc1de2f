"""Appending and reading messages through StoreMailboxes on both engines: flags as stored,
UID sets, batched scans, bodies, \\Recent, first unseen, changes seen by another session."""

from __future__ import annotations

from array import array

import pytest
from tests.support.clock import FakeClock
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import sibling

from hayate.mailbox.model import Folder, FolderNotFound, MailboxError, OverQuota, ranges_of
from hayate.mailbox.service import StoreMailboxes, canonical_flags
from hayate.store.sqlstore import SqlStore


def test_flags_are_canonical() -> None:
    assert canonical_flags(["\\SEEN", "\\answered", "$Label", "\\Recent", "$label", "\\Seen"]) == (
        "\\Seen", "\\Answered", "$Label",
    )
    for bad in ("\\Important", "two words", "", "par(en", "quo\"te", "back\\slash", "é"):
        with pytest.raises(MailboxError):
            canonical_flags([bad])


async def test_append_stores_flags_date_and_bytes(amy: StoreMailboxes) -> None:
    data = b"From: x@y\r\nSubject: caf\xc3\xa9\r\n\r\n\x00\xff body\r\n"
    uidvalidity, uid = await amy.append(
        "inbox", data, flags=["\\seen", "$Work", "\\Recent"], internaldate=1234.5
    )
    inbox = await amy.folder("INBOX")
    assert (uidvalidity, uid) == (inbox.uidvalidity, 1)
    [info] = await amy.messages(inbox, ((1, 1),))
    assert info.flags == frozenset({"\\Seen", "$Work"})
    assert (info.internaldate, info.size, info.modseq) == (1234.5, len(data), 2)
    assert await amy.body(inbox, 1) == data
    assert await amy.body(inbox, 2) is None
    assert await amy.body(inbox, 0) is None


async def test_append_refusals(store: SqlStore, amy: StoreMailboxes, clock: FakeClock) -> None:
    with pytest.raises(FolderNotFound):
        await amy.append("Nope", b"x")
    with pytest.raises(MailboxError):
        await amy.append("INBOX", b"")
    with pytest.raises(MailboxError):
        await amy.append("INBOX", b"x", flags=["\\Bogus"])
    await store.set_quota(AMY, 100)
    await amy.append("Sent", b"x" * 60)
    with pytest.raises(OverQuota):
        await amy.append("Sent", b"x" * 41)
    await amy.append("Sent", b"x" * 40)  # exactly full is fine
    assert (await amy.quota()).used == 100 and (await amy.quota()).limit == 100
    sent = await amy.folder("Sent")
    assert list(await amy.uids(sent)) == [1, 2]  # the refused one took no UID
    [(_, when)] = [(m.uid, m.internaldate) for m in await amy.messages(sent, ((2, 2),))]
    assert when == clock.now()


async def test_uids_and_uid_sets(store: SqlStore, amy: StoreMailboxes) -> None:
    for body in (b"m1", b"m2", b"m3"):
        await store.deliver(AMY, body)
    inbox = await amy.folder("INBOX")
    uids = await amy.uids(inbox)
    assert isinstance(uids, array) and uids.typecode == "I" and list(uids) == [1, 2, 3]
    assert [m.uid for m in await amy.messages(inbox, ((2, 4294967295),))] == [2, 3]
    assert await amy.messages(inbox, ((5, 9),)) == []
    assert await amy.messages(inbox, ()) == []
    assert [m.uid for m in await amy.messages(inbox, ((0, 1), (3, 10**12)))] == [1, 3]


async def test_large_uid_sets_are_read_in_chunks(store: SqlStore, amy: StoreMailboxes) -> None:
    await store.deliver_many([(AMY, b"m%d" % i) for i in range(1, 1301)])
    inbox = await amy.folder("INBOX")
    odd = ranges_of(list(range(1, 1301, 2)))  # 650 single UIDs: more than one statement
    assert len(odd) == 650
    assert [m.uid for m in await amy.messages(inbox, odd)] == list(range(1, 1301, 2))
    pairs = tuple((i, i + 1) for i in range(1, 1300, 3))  # 434 runs of two
    got = [m.uid for m in await amy.messages(inbox, pairs)]
    assert got == [u for i in range(1, 1300, 3) for u in (i, i + 1)]
    bodies = await amy.bodies(inbox, [1300, 7, 7, 5000, 0])
    assert bodies == {1300: b"m1300", 7: b"m7"}
    many = await amy.bodies(inbox, list(range(1, 1301)))
    assert len(many) == 1300 and many[999] == b"m999"


async def test_scan_pages_by_uid_in_bounded_batches(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await store.deliver_many([(AMY, b"body %d" % i) for i in range(1, 1002)])
    inbox = await amy.folder("INBOX")
    # Expunge a stretch so UIDs have a hole; keyset paging must not care.
    await amy.store_flags(inbox, ((100, 199),), "add", ["\\Deleted"])
    await amy.expunge(inbox)
    sizes: list[int] = []
    seen: list[int] = []
    async for batch in amy.scan(inbox, bodies=True, batch=128):
        sizes.append(len(batch))
        for info, body in batch:
            assert body == b"body %d" % info.uid
            seen.append(info.uid)
    assert seen == [u for u in range(1, 1002) if not 100 <= u <= 199]
    assert max(sizes) == 128 and sizes[-1] == 901 - 128 * 7
    # A UID subset, metadata only.
    batches = [b async for b in amy.scan(inbox, ((50, 250), (990, 2000)), batch=50)]
    assert all(body is None for b in batches for _, body in b)
    assert [i.uid for b in batches for i, _ in b] == [
        *range(50, 100), *range(200, 251), *range(990, 1002)
    ]
    assert [len(b) for b in batches] == [50, 50, 13]
    assert [b async for b in amy.scan(inbox, ())] == []
    with pytest.raises(ValueError):
        _ = [b async for b in amy.scan(inbox, batch=0)]


async def test_recent_is_claimed_by_one_session(store: SqlStore, amy: StoreMailboxes) -> None:
    for body in (b"1", b"2"):
        await store.deliver(AMY, body)
    inbox = await amy.folder("INBOX")
    other = StoreMailboxes(store, AMY)
    assert (await other.status("INBOX")).recent == 2  # STATUS/EXAMINE do not claim
    assert await amy.claim_recent(inbox) == 1  # UIDs 1 and 2 are recent here
    assert await other.claim_recent(inbox) == 3  # and to no one after
    await store.deliver(AMY, b"3")
    assert (await amy.status("INBOX")).recent == 1
    assert await other.claim_recent(inbox) == 3
    assert await amy.claim_recent(inbox) == 4


async def test_first_unseen_and_highestmodseq(store: SqlStore, amy: StoreMailboxes) -> None:
    inbox = await amy.folder("INBOX")
    assert await amy.first_unseen_uid(inbox) is None
    assert await amy.highestmodseq(inbox) == (1, 1)
    await amy.append("INBOX", b"a", flags=["\\Seen"])
    await amy.append("INBOX", b"b", flags=["$Seen"])  # a keyword, not \\Seen
    await amy.append("INBOX", b"c")
    assert await amy.first_unseen_uid(inbox) == 2
    assert await amy.highestmodseq(inbox) == (4, 4)
    await amy.delete_folder("Junk")
    junk_gone = Folder(9999, "Junk", 1, 1, 1)
    with pytest.raises(FolderNotFound):
        await amy.highestmodseq(junk_gone)
    with pytest.raises(FolderNotFound):
        await amy.changes_since(junk_gone, 0)
    with pytest.raises(FolderNotFound):
        await amy.claim_recent(junk_gone)


async def test_changes_made_elsewhere_are_seen(store: SqlStore, amy: StoreMailboxes) -> None:
    """Deliveries, flag changes and expunges by another connection (worker or node)."""
    inbox = await amy.folder("INBOX")
    for body in (b"1", b"2", b"3"):
        await store.deliver(AMY, body)
    known = (await amy.changes_since(inbox, 0)).highestmodseq
    async with sibling(store) as other_store:
        other = StoreMailboxes(other_store, AMY)
        await other_store.deliver(AMY, b"4")
        await other.store_flags(inbox, ((1, 2),), "add", ["\\Deleted"])
        await other.store_flags(inbox, ((3, 3),), "add", ["\\Seen"])
        assert await other.expunge(inbox) == [1, 2]
    changes = await amy.changes_since(inbox, known)
    assert changes.vanished == [1, 2]
    assert [(m.uid, m.flags) for m in changes.changed] == [
        (3, frozenset({"\\Seen"})), (4, frozenset()),
    ]
    assert all(known < m.modseq <= changes.highestmodseq for m in changes.changed)
    assert (changes.highestmodseq, changes.uidnext) == await amy.highestmodseq(inbox)
    nothing = await amy.changes_since(inbox, changes.highestmodseq)
    assert nothing.changed == [] and nothing.vanished == []


async def test_keywords_in_use_are_listed_once(amy: StoreMailboxes) -> None:
    inbox = await amy.folder("INBOX")
    assert await amy.keywords(inbox) == []
    await amy.append("INBOX", b"a", flags=["\\Seen", "$Forwarded"])
    await amy.append("INBOX", b"b", flags=["$forwarded", "Work"])
    await amy.append("INBOX", b"c", flags=["\\Flagged"])
    found = await amy.keywords(inbox)
    assert sorted(k.casefold() for k in found) == ["$forwarded", "work"]
    assert "$Forwarded" in found or "$forwarded" in found
    assert await amy.keywords(await amy.folder("Sent")) == []
