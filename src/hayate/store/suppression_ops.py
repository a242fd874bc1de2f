"""The suppression list's transactions (sans-I/O ops, see ``hayate.store.ops``).

A recipient is suppressed for mail from a sending domain when ``suppressions`` holds a row
for (that domain, address) or for ("*", address). Addresses and domains arrive here already
normalized (lower case). The soft-bounce rule lives in :func:`note_soft_bounce`: it records
one soft bounce and, when ``limit`` of them fall inside ``window`` seconds, suppresses the
address in the same transaction (so two workers counting at once cannot both miss it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hayate.store.base import ANY_DOMAIN, Suppression
from hayate.store.ops import Op, Query, where

# SQLite accepts at least 32766 parameters per statement (999 before 3.32); stay far below.
CHECK_CHUNK = 500

_COLUMNS = "domain, address, reason, source, created, detail"


def _suppression(row: tuple[Any, ...]) -> Suppression:
    return Suppression(
        str(row[0]), str(row[1]), str(row[2]), str(row[3]), float(row[4]), str(row[5])
    )


def add(entry: Suppression) -> Op[bool]:
    """Insert one entry; an existing entry for (domain, address) is kept. True when new."""
    res = yield Query(
        f"INSERT INTO suppressions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (domain, address) DO NOTHING RETURNING id",
        (entry.domain, entry.address, entry.reason, entry.source, entry.created, entry.detail),
    )
    if res.rows:
        yield Query(
            "DELETE FROM soft_bounces WHERE domain = ? AND address = ?",
            (entry.domain, entry.address),
        )
    return bool(res.rows)


def remove(address: str, domain: str | None) -> Op[int]:
    """Remove the entry of one domain, or every entry of ``address`` when domain is None."""
    clause, params = where(("domain = ?", domain), ("address = ?", address))
    res = yield Query(f"DELETE FROM suppressions{clause} RETURNING id", params)
    yield Query(f"DELETE FROM soft_bounces{clause}", params)
    return len(res.rows)


def list_entries(domain: str | None, address: str | None) -> Op[list[Suppression]]:
    clause, params = where(("domain = ?", domain), ("address = ?", address))
    res = yield Query(
        f"SELECT {_COLUMNS} FROM suppressions{clause} ORDER BY domain, address", params
    )
    return [_suppression(row) for row in res.rows]


def check(domain: str, addresses: Sequence[str]) -> Op[set[str]]:
    """Which of ``addresses`` are suppressed for ``domain``; one query per 500 addresses."""
    unique = list(dict.fromkeys(addresses))
    found: set[str] = set()
    for start in range(0, len(unique), CHECK_CHUNK):
        chunk = unique[start : start + CHECK_CHUNK]
        marks = ", ".join("?" * len(chunk))
        res = yield Query(
            f"SELECT address FROM suppressions WHERE domain IN (?, ?) AND address IN ({marks})",
            (domain, ANY_DOMAIN, *chunk),
        )
        found.update(str(row[0]) for row in res.rows)
    return found


def note_soft_bounce(
    entry: Suppression, window: float, limit: int
) -> Op[tuple[int, bool]]:
    """Record one soft bounce of ``entry.address`` at ``entry.created``.

    Returns (soft bounces inside the window, suppressed now or before). When the count
    reaches ``limit`` the entry is added (an existing entry is kept).
    """
    res = yield Query(
        "SELECT 1 FROM suppressions WHERE domain IN (?, ?) AND address = ?",
        (entry.domain, ANY_DOMAIN, entry.address),
    )
    if res.rows:
        return 0, True
    yield Query(
        "DELETE FROM soft_bounces WHERE domain = ? AND address = ? AND time <= ?",
        (entry.domain, entry.address, entry.created - window),
    )
    yield Query(
        "INSERT INTO soft_bounces (domain, address, time) VALUES (?, ?, ?)",
        (entry.domain, entry.address, entry.created),
    )
    res = yield Query(
        "SELECT count(*) FROM soft_bounces WHERE domain = ? AND address = ?",
        (entry.domain, entry.address),
    )
    count = int(res.rows[0][0])
    if count < limit:
        return count, False
    yield from add(entry)
    return count, True


def prune_soft_bounces(before: float) -> Op[int]:
    res = yield Query("DELETE FROM soft_bounces WHERE time < ?", (before,))
    return max(res.rowcount, 0)
