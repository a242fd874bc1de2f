"""Rate limiters for shaping: a token bucket, and the set of them one path needs.

:class:`RateLimiter` is a token bucket: it holds at most ``burst`` tokens, gains
``per_second`` tokens a second, and each message (or new connection) costs one token. It
starts full. ``delay(now)`` says how long to wait before the next one may go (0: now);
``take(now)`` spends a token. Taking without waiting is allowed (the bucket goes into debt
and the following delays grow accordingly), so the long-run rate never exceeds
``per_second`` by more than the initial ``burst``: over a minute at N per minute at most
N + burst pass.

:class:`PathThrottle` bundles the limiters of one (egress source, site) path from its
:class:`~hayate.queue.shaping.Limits`: messages per minute, messages per hour and new
connections per minute; a limit of ``None`` is no limiter at all.

Time is passed in by the caller (seconds from any clock that does not go backwards), so
tests drive the limiters with a fake clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hayate.queue.shaping import Limits

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


def _limiter(rate: float | None, seconds: float) -> RateLimiter | None:
    return None if rate is None else RateLimiter(rate / seconds)


class PathThrottle:
    """The rate limiters of one path, built from (and updatable to) its current Limits."""

    __slots__ = ("_connections", "_hour", "_limits", "_minute")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._minute = _limiter(limits.messages_per_minute, 60.0)
        self._hour = _limiter(limits.messages_per_hour, 3600.0)
        self._connections = _limiter(limits.connections_per_minute, 60.0)

    def update(self, limits: Limits, now: float) -> None:
        """Follow new limits (a governor slowing the path down, or recovering)."""
        if limits == self._limits:
            return
        self._minute = _retuned(self._minute, limits.messages_per_minute, 60.0, now)
        self._hour = _retuned(self._hour, limits.messages_per_hour, 3600.0, now)
        self._connections = _retuned(self._connections, limits.connections_per_minute, 60.0, now)
        self._limits = limits

    def message_delay(self, now: float) -> float:
        """Seconds before the next message may start on this path."""
        return max(_delay(self._minute, now), _delay(self._hour, now))

    def take_message(self, now: float) -> None:
        if self._minute is not None:
            self._minute.take(now)
        if self._hour is not None:
            self._hour.take(now)

    def connection_delay(self, now: float) -> float:
        """Seconds before a new connection may be opened on this path."""
        return _delay(self._connections, now)

    def take_connection(self, now: float) -> None:
        if self._connections is not None:
            self._connections.take(now)


def _delay(limiter: RateLimiter | None, now: float) -> float:
    return 0.0 if limiter is None else limiter.delay(now)


def _retuned(
    limiter: RateLimiter | None, rate: float | None, seconds: float, now: float
) -> RateLimiter | None:
    if rate is None:
        return None
    if limiter is None:
        return RateLimiter(rate / seconds)
    limiter.set_rate(rate / seconds, now)
    return limiter
