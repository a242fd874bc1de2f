"""The suppression list in the store, on both engines: entries, lookups, the soft-bounce rule."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock
from tests.unit.store.store_helpers import raw_rows

from hayate.store.base import InvalidAddress, Suppression
from hayate.store.sqlstore import SqlStore


async def test_add_list_remove(store: SqlStore, clock: FakeClock) -> None:
    assert await store.add_suppression("Example.com", "Bob@Example.NET", "user-unknown",
                                       "hard-bounce", "5.1.1 no such user") is True
    # A second add keeps the first entry as it was.
    assert await store.add_suppression("example.com", "bob@example.net", "again") is False
    assert await store.add_suppression("*", "eve@example.org", "operator", "manual") is True
    entries = await store.list_suppressions()
    assert entries == [
        Suppression("*", "eve@example.org", "operator", "manual", clock.now(), ""),
        Suppression("example.com", "bob@example.net", "user-unknown", "hard-bounce",
                    clock.now(), "5.1.1 no such user"),
    ]
    assert await store.list_suppressions(domain="example.com") == entries[1:]
    assert await store.list_suppressions(address="EVE@example.org") == entries[:1]
    assert await store.remove_suppression("bob@example.net", "example.org") == 0
    assert await store.remove_suppression("BOB@example.net", "example.com") == 1
    assert await store.list_suppressions(domain="example.com") == []


async def test_remove_without_domain_removes_every_entry(store: SqlStore) -> None:
    for domain in ("a.example", "b.example", "*"):
        await store.add_suppression(domain, "x@example.net")
    await store.add_suppression("a.example", "y@example.net")
    assert await store.remove_suppression("x@example.net") == 3
    assert [e.address for e in await store.list_suppressions()] == ["y@example.net"]


async def test_bad_input_is_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidAddress):
        await store.add_suppression("example.com", "not-an-address")
    with pytest.raises(InvalidAddress):
        await store.add_suppression("a@b", "x@example.net")
    with pytest.raises(ValueError, match="source"):
        await store.add_suppression("example.com", "x@example.net", source="whim")


async def test_check_many_recipients_at_once(store: SqlStore) -> None:
    await store.add_suppression("example.com", "dead@example.net")
    await store.add_suppression("*", "gone@example.org")
    await store.add_suppression("other.example", "alive@example.net")
    many = [f"user{i}@example.net" for i in range(1200)]  # more than one chunk
    found = await store.check_suppressions(
        "Example.COM", ["Dead@Example.net", "gone@example.org", "alive@example.net", *many]
    )
    assert found == {"dead@example.net", "gone@example.org"}
    assert await store.check_suppressions("other.example", ["alive@example.net"]) == {
        "alive@example.net"
    }
    assert await store.check_suppressions("example.com", []) == set()


async def test_soft_bounces_suppress_at_the_limit_within_the_window(
    store: SqlStore, clock: FakeClock
) -> None:
    async def bounce() -> tuple[int, bool]:
        return await store.note_soft_bounce("example.com", "full@example.net", window=100.0,
                                            limit=3)

    assert await bounce() == (1, False)
    clock.advance(60)
    assert await bounce() == (2, False)
    clock.advance(60)  # the first one is now outside the window
    assert await bounce() == (2, False)
    assert await store.check_suppressions("example.com", ["full@example.net"]) == set()
    clock.advance(10)
    count, suppressed = await store.note_soft_bounce(
        "example.com", "full@example.net", window=100.0, limit=3, reason="mailbox-full",
        detail="4.2.2",
    )
    assert (count, suppressed) == (3, True)
    [entry] = await store.list_suppressions()
    assert (entry.source, entry.reason, entry.detail) == ("soft-bounces", "mailbox-full", "4.2.2")
    # The counter is reset once suppressed; a later bounce only reports the suppression.
    assert await raw_rows(store, "SELECT count(*) FROM soft_bounces") == [(0,)]
    assert await bounce() == (0, True)
    # Another sending domain counts on its own.
    assert await store.note_soft_bounce(
        "other.example", "full@example.net", window=100.0, limit=3
    ) == (1, False)


async def test_prune_soft_bounces(store: SqlStore, clock: FakeClock) -> None:
    await store.note_soft_bounce("example.com", "a@example.net", window=10, limit=5)
    clock.advance(100)
    await store.note_soft_bounce("example.com", "b@example.net", window=10, limit=5)
    assert await store.prune_soft_bounces(clock.now() - 10) == 1
    assert await raw_rows(store, "SELECT address FROM soft_bounces") == [("b@example.net",)]
