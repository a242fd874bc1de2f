"""What the scheduler needs from shaping, egress selection and rate limiting, as Protocols.

The scheduler is written against these shapes only; the runtime passes the concrete
objects (``hayate.queue.shaping.Shaping``, ``hayate.delivery.egress.Egress``,
``hayate.queue.throttle.RateLimiter``), which match them structurally. Keeping the contract
here means the scheduler never imports delivery code and its tests can run each feature on
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class LimitsView(Protocol):
    """Shaping limits of one path; a rate of None (or 0) means no limit."""

    @property
    def connections(self) -> int: ...
    @property
    def messages_per_connection(self) -> int: ...
    @property
    def recipients_per_transaction(self) -> int: ...
    @property
    def messages_per_minute(self) -> float | None: ...
    @property
    def messages_per_hour(self) -> float | None: ...
    @property
    def connections_per_minute(self) -> float | None: ...


class SiteView(Protocol):
    """A destination site: the MX rollup of domains, and its provider preset if any."""

    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str | None: ...


class PathStateView(Protocol):
    """The governor's verdict on a path right now."""

    @property
    def suspended_until(self) -> float: ...
    @property
    def rate_factor(self) -> float: ...
    @property
    def max_connections(self) -> int | None: ...
    @property
    def reason(self) -> str: ...


class Governor(Protocol):
    """Automation of one (source, site) path: reply rules that slow down or suspend it."""

    def on_reply(self, code: int, enhanced: str, text: str, now: float) -> str | None:
        """Feed one reply; returns a description of the action taken, if a rule fired."""
        ...

    def state(self, now: float) -> PathStateView: ...

    def apply(self, limits: Any, now: float) -> LimitsView:
        """``limits`` as the current state allows (halved rates, fewer connections)."""
        ...


class ShapingPolicy(Protocol):
    def site_for(self, domain: str, mx_hosts: Sequence[str]) -> SiteView: ...
    def limits_for(self, site: Any, domain: str) -> LimitsView: ...
    def governor(self, site: Any) -> Governor:
        """The governor of one path (a fresh one per call: the scheduler keeps it)."""
        ...


class SourceChoice(Protocol):
    """The egress source picked for a job: its name, local address and EHLO name."""

    @property
    def source(self) -> str: ...
    @property
    def address(self) -> str | None: ...
    @property
    def helo(self) -> str | None: ...


class EgressSelector(Protocol):
    def choose(
        self, sender_domain: str, stream: str, provider: str | None, now: float
    ) -> SourceChoice | float:
        """A source for this mail, or (a float) the time until which no source may send it
        (a warm-up cap reached for today)."""
        ...

    def sent(self, source: str, provider: str | None, count: int, now: float) -> None:
        """Count ``count`` messages sent from ``source`` to ``provider`` (warm-up caps)."""
        ...


class Limiter(Protocol):
    """A token bucket: ``delay(now)`` seconds until one token is available; ``take`` one."""

    def delay(self, now: float) -> float: ...
    def take(self, now: float) -> None: ...


LimiterFactory = Callable[[float, float], Limiter]  # (per_second, burst) → limiter
