"""A bounded in-memory cache whose entries expire: the memory of :mod:`hayate.dns.resolver`.

Least recently used entries are dropped first once ``capacity`` is reached; an entry is gone
as soon as the clock passes its expiry (checked when it is read). Time comes from a
:class:`~hayate.core.seams.Clock`, so tests can move it forward instead of sleeping.
Not thread-safe: one cache belongs to one event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from hayate.core.seams import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """At most ``capacity`` values, each kept for its own time to live."""

    def __init__(self, capacity: int, clock: Clock) -> None:
        if capacity < 0:
            raise ValueError("cache capacity cannot be negative")
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value under ``key``, or None when there is none or it has expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock.now() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds; a TTL of 0 or less only forgets the old value."""
        self._entries.pop(key, None)
        if ttl <= 0 or self._capacity == 0:
            return
        self._entries[key] = (self._clock.now() + ttl, value)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
