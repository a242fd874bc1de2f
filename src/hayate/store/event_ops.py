"""The delivery events' transactions (sans-I/O ops, see ``hayate.store.ops``).

Events are written in batches (one executemany inside one transaction), read back newest
first up to a limit (returned oldest first), and deleted by age for retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hayate.core.events import DeliveryEvent, EventKind
from hayate.store.ops import Op, Query, where

_COLUMNS = (
    "time, kind, recipient, sender, queue_id, status, reply, relay, source, site, stream,"
    " attempts, bounce_kind, reason"
)


def _row(event: DeliveryEvent) -> tuple[Any, ...]:
    return (
        event.time, str(event.kind), event.recipient.strip().lower(), event.sender,
        event.queue_id, event.status, event.reply, event.relay, event.source, event.site,
        event.stream, event.attempts, event.bounce_kind, event.reason,
    )


def _event(row: tuple[Any, ...]) -> DeliveryEvent:
    return DeliveryEvent(
        time=float(row[0]), kind=EventKind(str(row[1])), recipient=str(row[2]),
        sender=str(row[3]), queue_id=str(row[4]), status=str(row[5]), reply=str(row[6]),
        relay=str(row[7]), source=str(row[8]), site=str(row[9]), stream=str(row[10]),
        attempts=int(row[11]), bounce_kind=str(row[12]), reason=str(row[13]),
    )


def insert(events: Sequence[DeliveryEvent]) -> Op[int]:
    marks = ", ".join("?" * 14)
    res = yield Query(
        f"INSERT INTO events ({_COLUMNS}) VALUES ({marks})",
        many=tuple(_row(e) for e in events),
    )
    return res.rowcount if res.rowcount >= 0 else len(events)


def query(
    recipient: str | None,
    since: float | None,
    until: float | None,
    kind: str | None,
    queue_id: str | None,
    limit: int,
) -> Op[list[DeliveryEvent]]:
    """The newest ``limit`` events that match every given filter, oldest first."""
    text, params = where(
        ("recipient = ?", recipient),
        ("time >= ?", since),
        ("time < ?", until),
        ("kind = ?", kind),
        ("queue_id = ?", queue_id),
    )
    res = yield Query(
        f"SELECT {_COLUMNS} FROM events{text} ORDER BY time DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    return [_event(row) for row in reversed(res.rows)]


def sender_of(queue_id: str) -> Op[str | None]:
    """The original envelope sender recorded for a message (None when no event names it)."""
    res = yield Query(
        "SELECT sender FROM events WHERE queue_id = ? AND sender <> '' LIMIT 1", (queue_id,)
    )
    return str(res.rows[0][0]) if res.rows else None


def delete_before(time: float) -> Op[int]:
    res = yield Query("DELETE FROM events WHERE time < ?", (time,))
    return max(res.rowcount, 0)
