"""The rate-limiter seam of the ready queues.

Shaping's rates (messages per minute and per hour, new connections per minute) are token
buckets. In one process they are :class:`hayate.queue.throttle.RateLimiter`; when several
nodes send from the same addresses the buckets must be shared (Redis, see the design guide),
so the scheduler takes a :data:`LimiterFactory` and the ready queues only know this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """A token bucket: ``delay(now)`` seconds until one token is available; ``take`` one."""

    def delay(self, now: float) -> float: ...
    def take(self, now: float) -> None: ...


LimiterFactory = Callable[[float, float], Limiter]  # (per_second, burst) → limiter
