"""Delivery events in the store, on both engines: batch insert, queries, retention."""

from __future__ import annotations

import dataclasses

import pytest

from hayate.core.events import DeliveryEvent, EventKind
from hayate.store.sqlstore import SqlStore


def _event(t: float, kind: EventKind, rcpt: str, qid: str = "Q1", **kw: object) -> DeliveryEvent:
    return DeliveryEvent(time=t, kind=kind, recipient=rcpt, queue_id=qid, **kw)  # type: ignore[arg-type]


async def test_batch_round_trip_keeps_every_field(store: SqlStore) -> None:
    full = DeliveryEvent(
        time=100.5, kind=EventKind.ASYNC_BOUNCE, recipient="Bob@Example.NET",
        sender="news@example.com", queue_id="18A2F", status="5.1.1",
        reply="550 5.1.1 no such user", relay="mx.example.net[192.0.2.1]:25", source="ip1",
        site="example.net", stream="bulk", attempts=2, bounce_kind="hard",
        reason="user-unknown",
    )
    batch = [full, _event(101.0, EventKind.DELIVERED, "amy@example.net")]
    assert await store.insert_events(batch) == 2
    got = await store.query_events()
    assert got[0] == dataclasses.replace(full, recipient="bob@example.net")
    assert got[1] == batch[1]
    assert await store.insert_events([]) == 0


async def test_filters_and_limit(store: SqlStore) -> None:
    await store.insert_events([
        _event(10, EventKind.DEFERRED, "a@example.net", "Q1"),
        _event(20, EventKind.DELIVERED, "a@example.net", "Q1"),
        _event(30, EventKind.BOUNCED, "b@example.net", "Q2"),
        _event(40, EventKind.SUPPRESSED, "A@example.net", "Q3"),
    ])
    by_rcpt = await store.query_events(recipient="A@EXAMPLE.NET")
    assert [e.time for e in by_rcpt] == [10, 20, 40]
    assert [e.time for e in await store.query_events(since=20, until=40)] == [20, 30]
    assert [e.time for e in await store.query_events(kind="bounced")] == [30]
    assert [e.time for e in await store.query_events(queue_id="Q1")] == [10, 20]
    # The limit keeps the newest, returned oldest first.
    assert [e.time for e in await store.query_events(limit=2)] == [30, 40]
    assert await store.query_events(recipient="a@example.net", kind="bounced") == []
    with pytest.raises(ValueError):
        await store.query_events(limit=0)


async def test_sender_of_a_queue_id(store: SqlStore) -> None:
    await store.insert_events([
        _event(1, EventKind.DEFERRED, "a@example.net", "Q9"),
        _event(2, EventKind.DELIVERED, "a@example.net", "Q9", sender="news@example.com"),
    ])
    assert await store.event_sender("Q9") == "news@example.com"
    assert await store.event_sender("nope") is None


async def test_retention_deletes_older_events(store: SqlStore) -> None:
    await store.insert_events([_event(t, EventKind.DELIVERED, "a@example.net") for t in (1, 2, 3)])
    assert await store.delete_events_before(3) == 2
    assert [e.time for e in await store.query_events()] == [3]


async def test_a_batch_is_all_or_nothing(store: SqlStore) -> None:
    bad = DeliveryEvent(time=2, kind=EventKind.DELIVERED, recipient=None)  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - engine-specific error for NOT NULL
        await store.insert_events([_event(1, EventKind.DELIVERED, "a@example.net"), bad])
    assert await store.query_events() == []
