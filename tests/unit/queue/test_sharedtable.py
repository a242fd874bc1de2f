"""The node's shared limit table (hayate.core.sharedtable) across real forked processes.

Children are forked with the "fork" start method after the table exists, as ``hayate serve``
forks its workers; they share the table's memory and lock. Whatever a child observes is
written to a shared array, so the parent asserts on it. No timing is asserted: the bucket
tests run on a fake clock all children agree on (lock step through a barrier).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import pytest

from hayate.core.sharedtable import WANT_TTL, NodeSlots, SharedTable
from hayate.queue.nodelimits import SharedRateLimiter, node_limits

CTX = multiprocessing.get_context("fork")
KEY = "conn\x1fdefault\x1fmx:mx.example.org"


def run_children(count: int, body: Callable[[int], None], timeout: float = 60.0) -> None:
    """Fork ``count`` children running ``body(index)``; fail if one fails or hangs."""
    procs = [CTX.Process(target=body, args=(i,)) for i in range(count)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
            raise AssertionError("a child did not finish in time")
    assert [p.exitcode for p in procs] == [0] * count


def test_processes_hammering_one_key_never_exceed_the_limit() -> None:
    workers, limit, rounds = 4, 2, 3000
    table = SharedTable(workers)
    holding: Any = CTX.Array("i", workers, lock=False)  # each child writes its own cell
    peaks: Any = CTX.Array("i", workers, lock=False)
    wins: Any = CTX.Array("i", workers, lock=False)

    def body(worker: int) -> None:
        for _ in range(rounds):
            if not table.acquire(KEY, worker, limit, 100.0):
                os.sched_yield()
                continue
            # Counted after acquire and uncounted before release: the cells never add up
            # to more than the table allows, unless the table lets too many through.
            holding[worker] += 1
            peaks[worker] = max(peaks[worker], sum(holding))
            assert (table.held(KEY) or 0) <= limit
            os.sched_yield()
            holding[worker] -= 1
            wins[worker] += 1
            table.release(KEY, worker)

    run_children(workers, body)
    assert max(peaks) <= limit, list(peaks)
    assert sum(wins) > rounds  # they did get connections, from more than one process
    assert sum(1 for w in wins if w) >= 2, list(wins)
    assert table.held(KEY) == 0


def test_a_bucket_shared_by_three_processes_passes_the_rate_once() -> None:
    """Three processes at 2 tokens/s over 30 fake seconds: about 61 pass in all, where
    three separate buckets would let about 183 through."""
    workers, per_second, burst, step, steps = 3, 2.0, 1.0, 0.05, 600
    table = SharedTable(workers)
    factory = node_limits(table, 0).limiter_factory
    passed: Any = CTX.Array("i", workers, lock=False)
    barrier = CTX.Barrier(workers)

    def body(worker: int) -> None:
        limiter = factory("mpm\x1fdefault\x1fsite", per_second, burst)
        for i in range(steps + 1):
            barrier.wait(10)  # every process is at the same fake time
            now = i * step
            while limiter.delay(now) == 0.0:
                limiter.take(now)
                passed[worker] += 1

    run_children(workers, body)
    total = sum(passed)
    expected = burst + per_second * steps * step  # 61
    # Between one process's delay() and take() another may take the same token (debt
    # that later delays pay back): at most workers - 1 too many.
    assert expected - 1 <= total <= expected + workers - 1, list(passed)
    assert sum(1 for p in passed if p) >= 2  # shared, not one process taking it all


def test_resetting_a_dead_workers_column_frees_its_connections() -> None:
    table = SharedTable(3)

    def leak(worker: int) -> None:
        assert table.acquire(KEY, 1, 2, 10.0)
        assert table.acquire(KEY, 1, 2, 10.0)
        os._exit(0)  # dies holding both

    run_children(1, leak)
    assert table.held(KEY) == 2
    assert table.acquire(KEY, 2, 2, 10.0) is False
    assert table.reset_worker(1) == 2
    assert table.held(KEY) == 0
    assert table.acquire(KEY, 2, 2, 10.0 + WANT_TTL) is True


def test_a_full_table_falls_back_to_a_share_of_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = SharedTable(2, capacity=2)
    slots = NodeSlots(table, 0)
    assert slots.acquire("a", 5, 1.0) and slots.acquire("b", 5, 1.0)  # both slots in use
    with caplog.at_level(logging.WARNING, logger="hayate.sharedtable"):
        got = [slots.acquire("c", 5, 1.0) for _ in range(4)]
        slots.acquire("d", 5, 1.0)
    assert got == [True, True, False, False]  # 5 // 2 workers
    assert slots.held("c") == 2
    assert sum("is full" in r.getMessage() for r in caplog.records) == 1  # said once
    slots.release("c")
    assert slots.acquire("c", 5, 1.0)
    # A rate of a full table: this worker's half of it.
    limiter = SharedRateLimiter(slots, "e", per_second=2.0, burst=2.0)
    passed = 0
    for i in range(1001):
        now = i * 0.01  # ten seconds
        if limiter.delay(now) == 0.0:
            limiter.take(now)
            passed += 1
    assert passed == 1 + 10  # burst 1 and 1 a second


def test_a_stale_slot_is_reused_for_a_new_key() -> None:
    table = SharedTable(2, capacity=1)
    assert table.acquire("old", 0, 1, 1.0)
    assert table.acquire("new", 0, 1, 1.0) is None  # in use: no room
    table.release("old", 0)
    assert table.bucket_take("old", 1.0, 1.0, 1.0)  # its bucket is empty now ...
    assert table.bucket_delay("new", 1.0, 1.0, 1.5) is None
    assert table.bucket_delay("new", 1.0, 1.0, 2.0) == 0.0  # ... until it refilled
    assert table.held("old") is None


def test_a_waiting_worker_gets_its_share() -> None:
    table = SharedTable(2)
    assert table.acquire(KEY, 0, 2, 1.0) and table.acquire(KEY, 0, 2, 1.0)
    assert not table.give_way(KEY, 0, 2, 1.0, False, 9.0)  # nobody else wants
    assert table.acquire(KEY, 1, 2, 1.0) is False  # worker 1 now waits
    assert table.give_way(KEY, 0, 2, 1.1, False, 2.0)  # worker 0 holds more than half
    table.release(KEY, 0)
    assert table.acquire(KEY, 0, 2, 1.2) is False  # giving way until 2.0 ...
    assert table.acquire(KEY, 1, 2, 1.2) is True  # ... so the freed one goes to worker 1
    assert not table.give_way(KEY, 0, 2, 1.3, False, 9.0)  # one each: settled
    table.release(KEY, 1)  # worker 1 is done and wants nothing more: ...
    assert table.acquire(KEY, 0, 2, 2.1) is True  # ... worker 0 may take it all
    table.release(KEY, 0)
    table.release(KEY, 0)
    # A want older than WANT_TTL no longer counts (a worker that waits asks again often).
    assert table.acquire(KEY, 1, 2, 3.0) and table.acquire(KEY, 1, 2, 3.0)
    assert table.acquire(KEY, 0, 2, 3.1) is False  # full: worker 0 wants
    table.release(KEY, 1)
    assert table.acquire(KEY, 1, 2, 3.2) is False  # worker 1 keeps its half meanwhile
    assert table.acquire(KEY, 1, 2, 3.1 + WANT_TTL + 0.1) is True


def test_a_limit_below_the_workers_is_taken_in_turns() -> None:
    table = SharedTable(2)
    assert table.acquire(KEY, 0, 1, 1.0)
    assert table.acquire(KEY, 1, 1, 1.0) is False  # starved: it has none
    assert not table.give_way(KEY, 0, 1, 1.1, False, 9.0)  # within its share, turn not over
    assert table.give_way(KEY, 0, 1, 1.1, True, 2.0)  # its turn is over: worker 1 goes
    table.release(KEY, 0)
    assert table.acquire(KEY, 0, 1, 1.5) is False
    assert table.acquire(KEY, 1, 1, 1.5) is True


def test_limit_semantics_match_the_local_rate_limiter() -> None:
    from hayate.queue.throttle import RateLimiter

    table = SharedTable(1)
    shared = SharedRateLimiter(NodeSlots(table, 0), "k", per_second=0.5, burst=3.0)
    local = RateLimiter(0.5, 3.0)
    for i in range(400):
        now = i * 0.25
        assert shared.delay(now) == pytest.approx(local.delay(now))
        if i % 3 == 0:  # takes without waiting too: debt
            shared.take(now)
            local.take(now)


def test_a_forked_child_sees_the_parents_counts() -> None:
    table = SharedTable(2)
    assert table.acquire(KEY, 0, 3, 1.0)
    seen: Synchronized[int] = CTX.Value("i", -1, lock=False)  # type: ignore[assignment]

    def child(worker: int) -> None:
        seen.value = table.held(KEY) or 0

    run_children(1, child)
    assert seen.value == 1
