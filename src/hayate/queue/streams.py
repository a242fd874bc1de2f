"""Message streams in the queue: several FIFOs served in a fixed priority order.

A message belongs to one stream ("transactional", "bulk", or any name a client gives in the
stream header). Every queue that jobs wait in — a destination's FIFO and a ready queue of a
(source, site) path — keeps one FIFO per stream in a :class:`StreamQueues`; taking a job
always looks at the streams in priority order, so a transactional job queued after a
thousand bulk jobs is the next one out. Within one stream the order stays first in, first
out.

:class:`StreamOrder` holds the ranks: the configured priority list first, then every other
stream name in the order it was first seen (one shared order per scheduler).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class StreamOrder:
    """Ranks of stream names (0 = served first) and the name of the default stream."""

    __slots__ = ("_ranks", "default")

    def __init__(self, priority: Sequence[str], default: str) -> None:
        self.default = default
        self._ranks: dict[str, int] = {}
        for name in (*priority, default):
            self._ranks.setdefault(name, len(self._ranks))

    def name(self, stream: str) -> str:
        """The stream a message is served in ('' = the default stream)."""
        return stream or self.default

    def rank(self, stream: str) -> int:
        rank = self._ranks.get(stream)
        if rank is None:
            rank = self._ranks[stream] = len(self._ranks)
        return rank


class StreamQueues(Generic[T]):
    """One FIFO per stream; :meth:`pop` takes from the highest-priority non-empty one."""

    __slots__ = ("_by_name", "_lanes", "order", "size")

    def __init__(self, order: StreamOrder) -> None:
        self.order = order
        self._lanes: list[tuple[int, str, deque[T]]] = []  # sorted by rank
        self._by_name: dict[str, deque[T]] = {}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def _lane(self, stream: str) -> deque[T]:
        lane = self._by_name.get(stream)
        if lane is None:
            lane = self._by_name[stream] = deque()
            self._lanes.append((self.order.rank(stream), stream, lane))
            self._lanes.sort(key=lambda entry: entry[0])
        return lane

    def push(self, stream: str, item: T) -> None:
        self._lane(stream).append(item)
        self.size += 1

    def pop(self) -> T:
        """The oldest item of the first stream (in priority order) that has one."""
        for _, _, lane in self._lanes:
            if lane:
                self.size -= 1
                return lane.popleft()
        raise IndexError("pop from empty StreamQueues")

    def drain(self) -> list[T]:
        """Take every item out, in the order :meth:`pop` would have given them."""
        items: list[T] = []
        for _, _, lane in self._lanes:
            items.extend(lane)
            lane.clear()
        self.size = 0
        return items

    def counts(self) -> dict[str, int]:
        """Waiting items per stream (streams with none are left out)."""
        return {name: len(lane) for _, name, lane in self._lanes if lane}

    def __iter__(self) -> Iterator[T]:
        for _, _, lane in self._lanes:
            yield from lane
