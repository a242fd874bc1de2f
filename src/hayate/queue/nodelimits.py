"""Shaping's limits held node-wide: the ready queues' seams over the workers' shared table.

``hayate serve`` creates one :class:`hayate.core.sharedtable.SharedTable` before it forks the
workers; each worker builds :func:`node_limits` from it and gives the two parts to its
scheduler:

* a :class:`~hayate.queue.contracts.LimiterFactory` whose limiters are the table's token
  buckets, so every worker spends the same tokens of a path's messages per minute, messages
  per hour and new connections per minute (same semantics as
  :class:`hayate.queue.throttle.RateLimiter`: starts full, debt allowed);
* :class:`~hayate.core.sharedtable.NodeSlots` as the
  :class:`~hayate.queue.contracts.ConnectionSlots` that count a path's connections over all
  workers (see :mod:`hayate.queue.claims` for how long a connection is counted).

When the table is full, a bucket falls back to this worker's share of the rate (rate and
burst divided by the number of workers, burst at least 1) in a local RateLimiter, and logs it
once (through the same warning as the connection slots).

The governor (reply automation, :mod:`hayate.queue.automation`) stays per worker: each
worker reacts to the replies it sees. A worker that slowed a path spends the shared tokens at
its reduced rate; when workers disagree, the bucket refills at the rate of the last one that
used it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hayate.core.sharedtable import NodeSlots, SharedTable
from hayate.queue.contracts import ConnectionSlots, Limiter, LimiterFactory
from hayate.queue.throttle import RateLimiter


class SharedRateLimiter:
    """One token bucket of the shared table (a :class:`~hayate.queue.contracts.Limiter`)."""

    __slots__ = ("_burst", "_fallback", "_key", "_per_second", "_slots")

    def __init__(self, slots: NodeSlots, key: str, per_second: float, burst: float) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be more than zero, got {per_second!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self._slots = slots
        self._key = key
        self._per_second = float(per_second)
        self._burst = float(burst)
        self._fallback: RateLimiter | None = None

    def delay(self, now: float) -> float:
        if self._fallback is None:
            wait = self._slots.table.bucket_delay(self._key, self._per_second, self._burst, now)
            if wait is not None:
                return wait
            self._fall_back()
        assert self._fallback is not None
        return self._fallback.delay(now)

    def take(self, now: float) -> None:
        if self._fallback is None:
            if self._slots.table.bucket_take(self._key, self._per_second, self._burst, now):
                return
            self._fall_back()
        assert self._fallback is not None
        self._fallback.take(now)

    def _fall_back(self) -> None:
        self._slots.warn_full()
        workers = self._slots.table.workers
        self._fallback = RateLimiter(self._per_second / workers,
                                     max(1.0, self._burst / workers))


@dataclass(frozen=True, slots=True)
class NodeLimits:
    """What a worker's scheduler takes to hold shaping's limits node-wide."""

    limiter_factory: LimiterFactory
    connection_slots: ConnectionSlots


def node_limits(table: SharedTable, worker: int) -> NodeLimits:
    slots = NodeSlots(table, worker)

    def factory(key: str, per_second: float, burst: float) -> Limiter:
        return SharedRateLimiter(slots, key, per_second, burst)

    return NodeLimits(factory, slots)
