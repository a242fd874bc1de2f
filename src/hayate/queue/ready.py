"""Ready queues: the jobs waiting for one (egress source, destination site) path.

A :class:`ReadyQueue` is the state the scheduler keeps per path:

* ``jobs``: one FIFO per message stream (:mod:`hayate.queue.streams`), transactional first;
* ``runners``: how many connections (runner tasks) serve it now, at most the effective
  ``connections`` limit; a runner carries at most ``messages_per_connection`` jobs;
* three token buckets: messages per minute and per hour (one token per job, i.e. per SMTP
  transaction) and new connections per minute (one token per runner started), made by the
  scheduler's limiter factory under the keys :func:`limit_key` gives (in one process, or
  shared by the workers of a node: :mod:`hayate.queue.contracts`);
* with several workers, ``claims``: the path's connections counted node-wide
  (:mod:`hayate.queue.claims`); a runner needs one;
* the path's governor (reply rules), whose state halves rates, lowers the connection limit
  or suspends the path; the buckets are rebuilt when the effective rate changes;
* what was sent in the last minute, for ``hayate queue sites``.

It holds no tasks and does no I/O: the scheduler drives it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from hayate.config import DeliveryConfig
from hayate.queue.automation import PathGovernor
from hayate.queue.claims import PathClaims
from hayate.queue.contracts import Limiter, LimiterFactory
from hayate.queue.shaping import Limits
from hayate.queue.streams import StreamOrder, StreamQueues

T = TypeVar("T")

RATE_WINDOW = 60.0  # seconds of history behind "rate in the last minute"


def limit_key(kind: str, source: str, site: str) -> str:
    """The key of one limit of a path in a limiter factory or connection slots:
    ``kind`` is "mpm", "mph", "cpm" (the rates) or "conn" (connections at once)."""
    return f"{kind}\x1f{source}\x1f{site}"


@dataclass(frozen=True, slots=True)
class PathLimits:
    """The limits a path runs with (shaping's, as adjusted by the governor)."""

    connections: int
    messages_per_connection: int
    recipients_per_transaction: int
    messages_per_minute: float | None = None  # None: no limit
    messages_per_hour: float | None = None
    connections_per_minute: float | None = None

    @classmethod
    def of(cls, limits: Limits) -> PathLimits:
        return cls(
            connections=max(1, int(limits.connections)),
            messages_per_connection=max(1, int(limits.messages_per_connection)),
            recipients_per_transaction=max(1, int(limits.recipients_per_transaction)),
            messages_per_minute=limits.messages_per_minute or None,
            messages_per_hour=limits.messages_per_hour or None,
            connections_per_minute=limits.connections_per_minute or None,
        )

    @classmethod
    def from_delivery(cls, cfg: DeliveryConfig) -> PathLimits:
        """Without shaping: the [delivery] settings, no rate limits."""
        return cls(
            cfg.connections_per_destination, cfg.messages_per_connection,
            cfg.recipients_per_transaction,
        )


class _Bucket:
    """A limiter for one rate, rebuilt when the rate changes (a governor slowed the path)."""

    __slots__ = ("_burst_seconds", "_factory", "_key", "full_after", "limiter", "rate")

    def __init__(self, factory: LimiterFactory, key: str, burst_seconds: float) -> None:
        self._factory = factory
        self._key = key
        self._burst_seconds = burst_seconds
        self.rate: float | None = None  # per minute (or per hour), as configured
        self.limiter: Limiter | None = None
        self.full_after = 0.0  # seconds an unused bucket takes to refill completely

    def set_rate(self, rate: float | None, per_seconds: float) -> None:
        if rate == self.rate:
            return
        self.rate = rate
        if rate is None or rate <= 0:
            self.limiter = None
            self.full_after = 0.0
            return
        per_second = rate / per_seconds
        # A small burst keeps a minute-long run within a few percent of the rate.
        burst = max(1.0, per_second * self._burst_seconds)
        self.limiter = self._factory(self._key, per_second, burst)
        self.full_after = burst / per_second

    def delay(self, now: float) -> float:
        return 0.0 if self.limiter is None else self.limiter.delay(now)

    def take(self, now: float) -> None:
        if self.limiter is not None:
            self.limiter.take(now)


class ReadyQueue(Generic[T]):
    """Jobs of one (source, site) path and its limits; see the module docstring."""

    def __init__(
        self,
        *,
        source: str,
        site: str,
        provider: str | None,
        address: str | None,
        helo: str | None,
        limits: PathLimits,
        raw_limits: Limits | None,
        governor: PathGovernor | None,
        order: StreamOrder,
        limiter_factory: LimiterFactory,
        claims: PathClaims | None = None,
    ) -> None:
        self.source = source
        self.site = site
        self.provider = provider
        self.address = address
        self.helo = helo
        self.base = limits
        self.raw_limits = raw_limits  # shaping's own Limits object, for governor.apply
        self.governor = governor
        self.jobs: StreamQueues[T] = StreamQueues(order)
        self.runners = 0
        self.timer: asyncio.TimerHandle | None = None
        self.last_action = ""  # the governor's last rule that fired
        self.claims = claims
        self.claims_timer: asyncio.TimerHandle | None = None  # releases parked claims
        self._per_minute = _Bucket(limiter_factory, limit_key("mpm", source, site), 1.0)
        self._per_hour = _Bucket(limiter_factory, limit_key("mph", source, site), 60.0)
        self._connections = _Bucket(limiter_factory, limit_key("cpm", source, site), 1.0)
        self._sent: deque[float] = deque()
        self.sent_total = 0
        self._last_used = float("-inf")  # last token taken or transaction sent

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.site)

    # --- limits ----------------------------------------------------------------------------

    def suspended_until(self, now: float) -> float:
        """The end of a suspension by the governor, or 0.0 when the path may send."""
        if self.governor is None:
            return 0.0
        until = self.governor.state(now).suspended_until or 0.0
        return until if until > now else 0.0

    def suspension_reason(self, now: float) -> str:
        return "" if self.governor is None else self.governor.state(now).reason

    def effective(self, now: float) -> PathLimits:
        """The limits right now; also re-rates the buckets when the governor changed them."""
        limits = self.base
        if self.governor is not None and self.raw_limits is not None:
            applied = self.governor.apply(self.raw_limits, now)
            if applied is not self.raw_limits:  # the same object when no rule is in force
                limits = PathLimits.of(applied)
        self._per_minute.set_rate(limits.messages_per_minute, 60.0)
        self._per_hour.set_rate(limits.messages_per_hour, 3600.0)
        self._connections.set_rate(limits.connections_per_minute, 60.0)
        return limits

    def message_delay(self, now: float) -> float:
        """Seconds until the next job may be sent (0.0: now)."""
        return max(self._per_minute.delay(now), self._per_hour.delay(now))

    def take_message(self, now: float) -> None:
        self._last_used = max(self._last_used, now)
        self._per_minute.take(now)
        self._per_hour.take(now)

    def connection_delay(self, now: float) -> float:
        return self._connections.delay(now)

    def take_connection(self, now: float) -> None:
        self._last_used = max(self._last_used, now)
        self._connections.take(now)

    # --- what happened -------------------------------------------------------------------

    def note_sent(self, now: float) -> None:
        self._last_used = max(self._last_used, now)
        self.sent_total += 1
        sent = self._sent
        sent.append(now)
        while sent and sent[0] <= now - RATE_WINDOW:
            sent.popleft()

    def rate_last_minute(self, now: float) -> int:
        sent = self._sent
        while sent and sent[0] <= now - RATE_WINDOW:
            sent.popleft()
        return len(sent)

    def idle(self, now: float) -> bool:
        """Nothing waiting, nobody running, no governor state worth keeping, and no use for
        a while: forgetting a path that sent recently would refill its rate buckets (its
        limits would not hold for mail arriving one message at a time) and hide it from
        ``hayate queue sites``."""
        if self.jobs or self.runners or self.timer is not None:
            return False
        if self.claims is not None and self.claims.held:
            return False  # parked claims: released by their timer first
        keep = max(RATE_WINDOW, self._per_minute.full_after, self._per_hour.full_after,
                   self._connections.full_after)
        if now - self._last_used < keep:
            return False
        if self.governor is None:
            return True
        state = self.governor.state(now)
        return (state.suspended_until or 0.0) <= now and state.rate_factor >= 1.0 and (
            state.max_connections is None
        )

    def snapshot(self, now: float) -> dict[str, object]:
        """One row of ``hayate queue sites`` (JSON-ready)."""
        limits = self.effective(now)
        row: dict[str, object] = {
            "source": self.source,
            "site": self.site,
            "provider": self.provider,
            "queued": self.jobs.counts(),
            "connections": self.runners,
            # every worker's, for this path (the same figure in each worker's row)
            "node_connections": (
                self.claims.node_held() if self.claims is not None else self.runners
            ),
            "limits": {
                "connections": limits.connections,
                "messages_per_connection": limits.messages_per_connection,
                "recipients_per_transaction": limits.recipients_per_transaction,
                "messages_per_minute": limits.messages_per_minute,
                "messages_per_hour": limits.messages_per_hour,
                "connections_per_minute": limits.connections_per_minute,
            },
            "sent_last_minute": self.rate_last_minute(now),
            "sent_total": self.sent_total,
            "suspended_until": None,
            "rate_factor": 1.0,
            "reason": "",
            "last_action": self.last_action,
        }
        if self.governor is not None:
            state = self.governor.state(now)
            until = state.suspended_until or 0.0
            row["suspended_until"] = until if until > now else None
            row["rate_factor"] = state.rate_factor
            row["reason"] = state.reason
        return row
