"""Mailboxes and delivery on both engines: UIDs under concurrency, batches, quota, cascades."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.clock import FakeClock
from tests.unit.store.store_helpers import raw_rows, sibling

from hayate.store.base import (
    MailboxExists,
    MailboxInfo,
    NoSuchAccount,
    NoSuchMailbox,
    QuotaExceeded,
    StoredMessage,
)
from hayate.store.sqlstore import SqlStore

MESSAGE = b"From: a@remote.example\r\nSubject: caf\xc3\xa9\r\n\r\nbody\x00\xff line\r\n"


async def test_new_account_has_an_empty_inbox_and_the_default_folders(
    store: SqlStore, clock: FakeClock
) -> None:
    await store.add_account("amy@example.com", "pw")
    now = int(clock.now())
    assert await store.list_mailboxes("amy@example.com") == [
        MailboxInfo("INBOX", now, 1, 1, None, True),
        MailboxInfo("Archive", now + 5, 1, 1, "\\Archive", True),
        MailboxInfo("Drafts", now + 1, 1, 1, "\\Drafts", True),
        MailboxInfo("Junk", now + 4, 1, 1, "\\Junk", True),
        MailboxInfo("Sent", now + 2, 1, 1, "\\Sent", True),
        MailboxInfo("Trash", now + 3, 1, 1, "\\Trash", True),
    ]
    assert await store.count_messages("amy@example.com") == 0
    assert await store.list_messages("amy@example.com") == []


async def test_more_mailboxes(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    sent = await store.create_mailbox("amy@example.com", "Sent Items", "\\Sent")
    await store.create_mailbox("amy@example.com", "Lists")
    assert sent.special_use == "\\Sent" and sent.uidnext == 1
    with pytest.raises(MailboxExists):
        await store.create_mailbox("amy@example.com", "Sent")
    with pytest.raises(MailboxExists):
        await store.create_mailbox("amy@example.com", "inbox")
    with pytest.raises(NoSuchAccount):
        await store.create_mailbox("ghost@example.com", "Sent")
    names = [m.name for m in await store.list_mailboxes("amy@example.com")]
    assert names == ["INBOX", "Archive", "Drafts", "Junk", "Lists", "Sent", "Sent Items",
                     "Trash"]
    assert await store.deliver("amy@example.com", b"copy", mailbox="Sent") == 1
    assert await store.deliver("amy@example.com", b"in", mailbox="inbox") == 1


async def test_deliver_fetch_list_count(store: SqlStore, clock: FakeClock) -> None:
    await store.add_account("amy@example.com", "pw")
    uid1 = await store.deliver("Amy@Example.com", MESSAGE)
    uid2 = await store.deliver(
        "amy@example.com", b"second", flags=("\\Seen", "$Label"), internaldate=1234.5
    )
    assert (uid1, uid2) == (1, 2)
    assert await store.fetch_message("amy@example.com", "INBOX", 1) == MESSAGE
    assert await store.fetch_message("amy@example.com", "INBOX", 3) is None
    assert await store.list_messages("amy@example.com") == [
        StoredMessage(1, 2, clock.now(), len(MESSAGE), ()),
        StoredMessage(2, 3, 1234.5, 6, ("\\Seen", "$Label")),
    ]
    assert await store.count_messages("amy@example.com") == 2
    inbox = (await store.list_mailboxes("amy@example.com"))[0]
    assert (inbox.uidnext, inbox.highestmodseq) == (3, 3)
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == len(MESSAGE) + 6


async def test_deliver_to_unknown_account_or_mailbox(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    with pytest.raises(NoSuchAccount):
        await store.deliver("ghost@example.com", b"x")
    with pytest.raises(NoSuchMailbox):
        await store.deliver("amy@example.com", b"x", mailbox="Nope")
    with pytest.raises(NoSuchAccount):
        await store.list_messages("ghost@example.com")
    with pytest.raises(NoSuchMailbox):
        await store.fetch_message("amy@example.com", "Nope", 1)
    with pytest.raises(ValueError):
        await store.deliver("amy@example.com", b"x", flags=("two words",))
    assert await store.count_messages("amy@example.com") == 0


async def test_delete_message(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    for body in (b"one", b"three", b"fiveee"):
        await store.deliver("amy@example.com", body)
    assert await store.delete_message("amy@example.com", "INBOX", 2) is True
    assert await store.delete_message("amy@example.com", "INBOX", 2) is False
    assert [m.uid for m in await store.list_messages("amy@example.com")] == [1, 3]
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == 3 + 6
    inbox = (await store.list_mailboxes("amy@example.com"))[0]
    assert inbox.highestmodseq == 5  # three deliveries and one deletion
    # UIDs are never reused.
    assert await store.deliver("amy@example.com", b"four") == 4


async def test_concurrent_deliveries_get_distinct_consecutive_uids(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    uids = await asyncio.gather(
        *(store.deliver("amy@example.com", b"msg %d" % i) for i in range(200))
    )
    assert sorted(uids) == list(range(1, 201))
    stored = await store.list_messages("amy@example.com")
    assert [m.uid for m in stored] == list(range(1, 201))
    assert len({m.modseq for m in stored}) == 200
    # Each UID holds the body its deliver() call was given.
    for i in (0, 57, 199):
        assert await store.fetch_message("amy@example.com", "INBOX", uids[i]) == b"msg %d" % i


async def test_two_connections_deliver_concurrently(store: SqlStore) -> None:
    """Two workers (SQLite) or two nodes (PostgreSQL) sharing one database."""
    await store.add_account("amy@example.com", "pw")
    async with sibling(store) as other:
        uids = await asyncio.gather(
            *(s.deliver("amy@example.com", b"x") for s in [store, other] * 100)
        )
    assert sorted(uids) == list(range(1, 201))
    assert await store.count_messages("amy@example.com") == 200


async def test_deliver_many(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw")
    await store.deliver("bob@example.com", b"earlier")
    uids = await store.deliver_many(
        [
            ("bob@example.com", b"b2"),
            ("amy@example.com", b"a1"),
            ("BOB@example.com", b"b3"),
            ("amy@example.com", b"a2"),
        ]
    )
    assert uids == [2, 1, 3, 2]
    assert await store.fetch_message("bob@example.com", "INBOX", 3) == b"b3"
    assert await store.fetch_message("amy@example.com", "INBOX", 2) == b"a2"
    assert await store.deliver_many([]) == []


async def test_deliver_many_is_all_or_nothing(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw", quota_bytes=10)
    with pytest.raises(NoSuchAccount) as missing:
        await store.deliver_many([("amy@example.com", b"a"), ("ghost@example.com", b"g")])
    assert missing.value.address == "ghost@example.com"
    with pytest.raises(QuotaExceeded) as full:
        await store.deliver_many([("amy@example.com", b"a"), ("bob@example.com", b"x" * 11)])
    assert full.value.address == "bob@example.com"
    assert await store.count_messages("amy@example.com") == 0
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == 0
    # The UIDs of the rolled-back batches were not used up.
    assert await store.deliver_many([("amy@example.com", b"a")]) == [1]


async def test_opposite_batches_do_not_deadlock(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw")
    async with sibling(store) as other:
        forward = [("amy@example.com", b"1"), ("bob@example.com", b"2")]
        backward = [("bob@example.com", b"3"), ("amy@example.com", b"4")]
        await asyncio.wait_for(
            asyncio.gather(
                *(s.deliver_many(forward) for s in [store, other] * 10),
                *(s.deliver_many(backward) for s in [other, store] * 10),
            ),
            timeout=30,
        )
    assert await store.count_messages("amy@example.com") == 40
    assert await store.count_messages("bob@example.com") == 40


async def test_quota(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw", quota_bytes=100)
    await store.deliver("amy@example.com", b"x" * 60)
    with pytest.raises(QuotaExceeded) as info:
        await store.deliver("amy@example.com", b"y" * 41)
    assert (info.value.quota_bytes, info.value.used_bytes, info.value.size) == (100, 60, 41)
    assert await store.count_messages("amy@example.com") == 1
    assert await store.deliver("amy@example.com", b"y" * 40) == 2  # exactly full
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == 100
    await store.delete_message("amy@example.com", "INBOX", 1)
    assert await store.deliver("amy@example.com", b"z" * 50) == 3
    await store.set_quota("amy@example.com", 0)  # unlimited
    await store.deliver("amy@example.com", b"w" * 10_000)
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == 40 + 50 + 10_000


async def test_concurrent_deliveries_respect_the_quota(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw", quota_bytes=1000)
    results = await asyncio.gather(
        *(store.deliver("amy@example.com", b"x" * 100) for _ in range(30)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 10
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, int))
    account = await store.get_account("amy@example.com")
    assert account is not None and account.used_bytes == 1000


async def test_delete_account_removes_its_mailboxes_and_messages(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw")
    await store.create_mailbox("amy@example.com", "Lists", None)
    await store.deliver("amy@example.com", b"1")
    await store.deliver("amy@example.com", b"2", mailbox="Sent")
    await store.deliver("amy@example.com", b"4", mailbox="Lists")
    await store.deliver("bob@example.com", b"3")
    assert await store.delete_account("amy@example.com") is True
    assert (await raw_rows(store, "SELECT count(*) FROM mailboxes"))[0][0] == 6  # bob's
    assert (await raw_rows(store, "SELECT count(*) FROM messages"))[0][0] == 1
    with pytest.raises(NoSuchAccount):
        await store.list_mailboxes("amy@example.com")
    assert await store.fetch_message("bob@example.com", "INBOX", 1) == b"3"
    # A new account of the same name starts empty.
    await store.add_account("amy@example.com", "pw")
    assert await store.count_messages("amy@example.com") == 0
    assert await store.deliver("amy@example.com", b"new") == 1
