"""``[mailbox] max_connections_per_user`` held over the workers of a node: two session
counters (one per worker) sharing one :class:`SharedTable`."""

from __future__ import annotations

from hayate.core.sharedtable import NodeSlots, SharedTable
from hayate.mailbox.sessions import SessionCounter


def pair(limit_workers: int = 2) -> tuple[SharedTable, SessionCounter, SessionCounter]:
    table = SharedTable(workers=limit_workers)
    first, second = SessionCounter(), SessionCounter()
    first.share(NodeSlots(table, 0))
    second.share(NodeSlots(table, 1))
    return table, first, second


def test_the_limit_holds_over_both_workers() -> None:
    _, first, second = pair()
    assert first.acquire("amy@example.com", 2)
    assert second.acquire("amy@example.com", 2)
    assert not second.acquire("amy@example.com", 2)  # its own count is 1, the node's is 2
    assert not first.acquire("amy@example.com", 2)
    assert second.acquire("bob@example.com", 2)  # another account is not affected
    first.release("amy@example.com")
    assert second.acquire("amy@example.com", 2)
    assert (first.count("amy@example.com"), second.count("amy@example.com")) == (0, 2)


def test_a_release_without_a_session_gives_nothing_back() -> None:
    _, first, second = pair()
    assert first.acquire("amy@example.com", 1)
    second.release("amy@example.com")  # never acquired there: must not free first's slot
    assert not second.acquire("amy@example.com", 1)


def test_a_dead_workers_sessions_are_freed_with_its_share_of_the_table() -> None:
    table, first, second = pair()
    assert first.acquire("amy@example.com", 1)
    assert not second.acquire("amy@example.com", 1)
    table.reset_worker(0)  # what the master does when worker 0 dies
    assert second.acquire("amy@example.com", 1)


def test_without_a_table_each_process_counts_alone() -> None:
    first, second = SessionCounter(), SessionCounter()
    assert first.acquire("amy@example.com", 1) and second.acquire("amy@example.com", 1)
    assert not first.acquire("amy@example.com", 1)
