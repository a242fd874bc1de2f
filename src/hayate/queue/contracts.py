"""The seams of the ready queues' limits: rate limiters and connection slots.

Shaping's rates (messages per minute and per hour, new connections per minute) are token
buckets, and its ``connections`` is a count of connections at once per (egress source,
site). Who keeps them depends on how far they must hold:

* one process (single worker, tests): :func:`hayate.queue.throttle.local_limiter` and the
  ready queue's own runner count (no slots object);
* the worker processes of one node (``hayate serve`` with several workers): a table in shared
  memory, :mod:`hayate.queue.nodelimits` over :mod:`hayate.core.sharedtable`;
* several nodes sending from the same addresses: Redis (a later implementation of the same
  two shapes).

The scheduler takes a :class:`LimiterFactory` and an optional :class:`ConnectionSlots`; the
ready queues only know these shapes. Keys are strings naming the limit and the path (see
``hayate.queue.ready.limit_key``); one key is always used with the scheduler's clock.
"""

from __future__ import annotations

from typing import Protocol


class Limiter(Protocol):
    """A token bucket: ``delay(now)`` seconds until one token is available; ``take`` one
    (debt allowed: the following delays grow)."""

    def delay(self, now: float) -> float: ...
    def take(self, now: float) -> None: ...


class LimiterFactory(Protocol):
    """The bucket of ``key`` with ``per_second`` tokens a second, at most ``burst`` stored.

    Asked again with another rate when a governor changes it; a shared implementation keeps
    the tokens gathered so far, a local one may start afresh."""

    def __call__(self, key: str, per_second: float, burst: float) -> Limiter: ...


class ConnectionSlots(Protocol):
    """Connections at once per key, counted over more than one process.

    ``acquire`` counts one more if the total stays within ``limit`` (it may also refuse, to
    share fairly with other processes that wait, which a failed ``acquire`` records until
    ``unwant``); every success is paired with one ``release``. ``give_way``: should this
    process give a connection it holds back to others that wait, rather than reuse it
    (``turn_over``: it has held connections for a long while); if so, it may not take one
    again before ``until`` while others wait. ``held``: the total for ``key``."""

    def acquire(self, key: str, limit: int, now: float) -> bool: ...
    def release(self, key: str) -> None: ...
    def unwant(self, key: str) -> None: ...
    def give_way(self, key: str, limit: int, now: float, turn_over: bool,
                 until: float) -> bool: ...
    def held(self, key: str) -> int: ...
