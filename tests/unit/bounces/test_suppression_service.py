"""The suppression rules and the cached hot path of SuppressionService."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock

from hayate.bounces.records import BounceRecord
from hayate.bounces.suppression import SuppressionService, about_sender
from hayate.config import SuppressionConfig
from hayate.store.sqlite import SqliteStore

CFG = SuppressionConfig(soft_bounce_limit=3, soft_bounce_window=3600.0, cache_ttl=60.0)


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> SuppressionService:
    return SuppressionService(store, CFG, clock)


def hard(rcpt: str, reason: str = "user-unknown", status: str = "5.1.1") -> BounceRecord:
    return BounceRecord(rcpt, "hard", reason, status, "550 5.1.1 no such user")


async def test_hard_bounce_suppresses_at_once(
    service: SuppressionService, store: SqliteStore
) -> None:
    decision = await service.apply("Example.com", hard("Bob@Example.net"))
    assert decision.suppressed and decision.source == "hard-bounce"
    [entry] = await store.list_suppressions()
    assert (entry.domain, entry.address, entry.source, entry.reason) == (
        "example.com", "bob@example.net", "hard-bounce", "user-unknown"
    )
    assert entry.detail == "5.1.1 550 5.1.1 no such user"
    got = await service.suppressed("example.com", ["BOB@example.net", "amy@example.net"])
    assert got == {"BOB@example.net"}
    # Only for the domain that sent the mail.
    assert await service.suppressed("other.example", ["bob@example.net"]) == set()


async def test_soft_bounces_suppress_after_the_limit_in_the_window(
    service: SuppressionService, clock: FakeClock
) -> None:
    soft = BounceRecord("full@example.net", "soft", "mailbox-full", "4.2.2")
    assert (await service.apply("example.com", soft)).soft_count == 1
    clock.advance(4000)  # outside the window: the first one no longer counts
    assert (await service.apply("example.com", soft)).soft_count == 1
    clock.advance(100)
    assert not (await service.apply("example.com", soft)).suppressed
    clock.advance(100)
    decision = await service.apply("example.com", soft)
    assert decision.suppressed and decision.source == "soft-bounces" and decision.soft_count == 3
    assert await service.suppressed("example.com", ["full@example.net"]) == {"full@example.net"}


async def test_complaint_suppresses(service: SuppressionService, store: SqliteStore) -> None:
    record = BounceRecord("angry@example.net", "complaint", "abuse")
    assert (await service.apply("example.com", record)).source == "complaint"
    assert [e.source for e in await store.list_suppressions()] == ["complaint"]


@pytest.mark.parametrize(
    ("kind", "reason", "status"),
    [
        ("hard", "blocked", "5.7.1"),
        ("soft", "spamdetected", "5.7.1"),
        ("soft", "policy", "5.7.0"),
        ("hard", "", "5.7.1"),
        ("soft", "toomanyconn", "4.7.0"),
        ("auto-reply", "vacation", ""),
        ("delivered", "delivered", "2.0.0"),
        ("unknown", "", ""),
    ],
)
async def test_failures_about_us_and_non_bounces_never_suppress(
    service: SuppressionService, store: SqliteStore, kind: str, reason: str, status: str
) -> None:
    record = BounceRecord("x@example.net", kind, reason, status)  # type: ignore[arg-type]
    for _ in range(5):
        assert not (await service.apply("example.com", record)).suppressed
    assert await store.list_suppressions() == []


def test_about_sender_keeps_unknown_users() -> None:
    assert not about_sender("user-unknown", "5.7.1")  # some MTAs say 5.7.1 for no such user
    assert about_sender("blocked", "5.0.0")
    assert not about_sender("mailbox-full", "4.2.2")


async def test_note_failure_schedules_the_write(
    service: SuppressionService, store: SqliteStore
) -> None:
    service.note_failure("example.com", "gone@example.net", "5.1.1", permanent=True)
    service.note_failure("example.com", "nodomain@bad.example", "5.1.2", permanent=True)
    service.note_failure("example.com", "blocked@example.net", "5.7.1", permanent=True)
    service.note_failure("example.com", "later@example.net", "4.2.2", permanent=False)
    service.note_failure("example.com", "full@example.net", "5.2.2", permanent=True)
    await service.drain()
    entries = {e.address: e.reason for e in await store.list_suppressions()}
    assert entries == {"gone@example.net": "user-unknown", "nodomain@bad.example": "host-unknown"}
    assert (await service.apply("example.com", BounceRecord(
        "full@example.net", "soft", "mailbox-full"))).soft_count == 2


async def test_star_entry_applies_to_every_domain(
    service: SuppressionService, store: SqliteStore
) -> None:
    await store.add_suppression("*", "nobody@example.net", "operator")
    assert await service.suppressed("any.example", ["nobody@example.net"]) == {
        "nobody@example.net"
    }
    assert await service.suppressed("", ["nobody@example.net"]) == {"nobody@example.net"}


async def test_cache_answers_the_hot_path(
    service: SuppressionService, store: SqliteStore, clock: FakeClock
) -> None:
    rcpts = [f"r{i}@example.net" for i in range(50)]
    assert await service.suppressed("example.com", rcpts) == set()
    assert service.lookups == 1
    await store.add_suppression("example.com", "r7@example.net")  # behind the cache's back
    for _ in range(10):
        assert await service.suppressed("example.com", rcpts) == set()
    assert service.lookups == 1  # answered from the cache
    clock.advance(61)  # the TTL ran out
    assert await service.suppressed("example.com", rcpts) == {"r7@example.net"}
    assert service.lookups == 2
    # A change through the service is seen at once.
    await service.apply("example.com", hard("r8@example.net"))
    got = await service.suppressed("example.com", rcpts)
    assert got == {"r7@example.net", "r8@example.net"} and service.lookups == 2


async def test_cache_stays_bounded(store: SqliteStore, clock: FakeClock) -> None:
    small = SuppressionService(store, CFG, clock, cache_size=100)
    for batch in range(10):
        await small.suppressed("example.com", [f"u{batch}-{i}@example.net" for i in range(40)])
    assert len(small._cache) <= 100
