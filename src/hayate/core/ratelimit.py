"""Counting failed attempts per key (an address, a client) in a sliding window, in memory.

``FailureLimiter(max_failures, window, clock)``: after ``max_failures`` failures of a key
within ``window`` seconds, :meth:`retry_after` says how long until the oldest of them leaves
the window; :meth:`reset` forgets a key (after a success). A caller counts an attempt as a
failure *before* checking it and :meth:`forgive` s it on success, so that requests sent in
parallel cannot all pass the check before the first failure is counted. Memory is bounded: at most
``max_keys`` keys are tracked, the least recently failed ones are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from hayate.core.seams import Clock


class FailureLimiter:
    def __init__(self, max_failures: int, window: float, clock: Clock,
                 max_keys: int = 100_000) -> None:
        if max_failures < 1 or window <= 0:
            raise ValueError("max_failures must be at least 1 and window positive")
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self.clock.now() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until it may."""
        times = self._recent(key)
        if times is None or len(times) < self.max_failures:
            return 0.0
        return max(0.0, times[-self.max_failures] + self.window - self.clock.now())

    def note_failure(self, key: str) -> None:
        times = self._recent(key)
        if times is None:
            times = deque(maxlen=self.max_failures)
            self._failures[key] = times
        times.append(self.clock.now())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str) -> None:
        """Take back the latest failure of ``key`` (an attempt counted up front that passed)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]
