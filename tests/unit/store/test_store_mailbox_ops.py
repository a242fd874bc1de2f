"""The mailbox service's store layer: the pure helpers of ``mailbox_ops`` and
``folder_ops``, and what the store methods do on both engines beyond what the service tests
see (tombstones from ``delete_message``, ``account_quota``, locks keyed by address)."""

from __future__ import annotations

from tests.unit.store.store_helpers import raw_rows

from hayate.store.folder_ops import parents_of
from hayate.store.mailbox_ops import clip_after, decode_hex_uids, merge_flags, uid_conditions
from hayate.store.sqlstore import SqlStore


def test_uid_conditions_cover_the_set_in_bounded_statements() -> None:
    assert uid_conditions(()) == []
    assert uid_conditions(((1, 1), (3, 9))) == [
        ("(uid IN (?) OR uid BETWEEN ? AND ?)", (1, 3, 9))
    ]
    singles = tuple((u, u) for u in range(1, 2000, 2))
    chunks = uid_conditions(singles)
    assert len(chunks) == 3
    assert all(len(params) <= 400 for _, params in chunks)
    assert [p for _, params in chunks for p in params] == list(range(1, 2000, 2))


def test_clip_after_and_parents() -> None:
    assert clip_after(((1, 5), (8, 9), (20, 30)), 8) == ((9, 9), (20, 30))
    assert parents_of("a/b/c") == ["a", "a/b"]
    assert parents_of("INBOX") == []


def test_merge_flags_is_case_insensitive_and_keeps_first_spelling() -> None:
    assert merge_flags(("\\Seen", "$Work"), "add", ("$work", "$New")) == (
        "\\Seen", "$Work", "$New",
    )
    assert merge_flags(("\\Seen", "$Work"), "remove", ("$WORK",)) == ("\\Seen",)
    assert merge_flags(("\\Seen",), "set", ("$A",)) == ("$A",)


def test_decode_hex_uids_sorts_what_comes_unordered() -> None:
    assert list(decode_hex_uids("")) == []
    assert list(decode_hex_uids("00000001ffffffff")) == [1, 0xFFFFFFFF]
    assert list(decode_hex_uids("0000000300000001")) == [1, 3]


async def test_delete_message_leaves_a_tombstone(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw", quota_bytes=1000)
    for body in (b"one", b"two"):
        await store.deliver("amy@example.com", body)
    assert await store.account_quota("AMY@example.com") == (6, 1000)
    assert await store.delete_message("amy@example.com", "INBOX", 1) is True
    assert await raw_rows(store, "SELECT uid, modseq FROM expunged") == [(1, 4)]
    assert await store.account_quota("amy@example.com") == (3, 1000)
    assert await store.account_quota("ghost@example.com") is None
    assert await store.account_quota("not an address") is None


async def test_locks_are_keyed_by_the_given_name(store: SqlStore) -> None:
    assert await store.acquire_lock("amy@example.com", "a", 30) is True
    assert await store.acquire_lock("amy@example.com", "b", 30) is False
    assert await store.refresh_lock("amy@example.com", "b", 30) is False
    await store.release_lock("amy@example.com", "a")
    assert await raw_rows(store, "SELECT count(*) FROM mailbox_locks") == [(0,)]
