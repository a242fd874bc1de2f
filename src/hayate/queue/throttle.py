"""The rate limiter of shaping: a token bucket.

:class:`RateLimiter` is a token bucket: it holds at most ``burst`` tokens, gains
``per_second`` tokens a second, and each message (or new connection) costs one token. It
starts full. ``delay(now)`` says how long to wait before the next one may go (0: now);
``take(now)`` spends a token. Taking without waiting is allowed (the bucket goes into debt
and the following delays grow accordingly), so the long-run rate never exceeds
``per_second`` by more than the initial ``burst``: over a minute at N per minute at most
N + burst pass.

The buckets of one (egress source, site) path are kept by :mod:`hayate.queue.ready`;
:func:`local_limiter` is the :class:`~hayate.queue.contracts.LimiterFactory` of one process
(the buckets shared by the workers of a node are in :mod:`hayate.queue.nodelimits`).

Time is passed in by the caller (seconds from any clock that does not go backwards), so
tests drive the limiters with a fake clock.
"""

from __future__ import annotations

_EPSILON = 1e-9  # tokens; absorbs float rounding so that waiting delay(now) is enough


class RateLimiter:
    """A token bucket: ``per_second`` on average, at most ``burst`` at once."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, per_second: float, burst: float = 1.0) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be more than zero, got {per_second!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self._rate = float(per_second)
        self._burst = float(burst)
        self._tokens = self._burst
        self._stamp: float | None = None

    @classmethod
    def per_minute(cls, count: float, burst: float = 1.0) -> RateLimiter:
        return cls(count / 60.0, burst)

    @classmethod
    def per_hour(cls, count: float, burst: float = 1.0) -> RateLimiter:
        return cls(count / 3600.0, burst)

    @property
    def per_second(self) -> float:
        return self._rate

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
            return
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._stamp = now

    def delay(self, now: float) -> float:
        """Seconds to wait before the next one may go (0: go now)."""
        self._refill(now)
        missing = 1.0 - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self._rate

    def take(self, now: float) -> None:
        """Spend one token (whether or not the caller waited)."""
        self._refill(now)
        self._tokens -= 1.0

    def set_rate(self, per_second: float, now: float) -> None:
        """Change the rate from ``now`` on, keeping the tokens (or debt) gathered so far."""
        if not per_second > 0:
            raise ValueError(f"per_second must be more than zero, got {per_second!r}")
        self._refill(now)
        self._rate = float(per_second)


def local_limiter(key: str, per_second: float, burst: float) -> RateLimiter:
    """A bucket of this process only (``key`` is not needed: the caller keeps the object)."""
    return RateLimiter(per_second, burst)
