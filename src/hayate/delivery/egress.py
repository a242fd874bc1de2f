"""Egress selection: which source address (and EHLO name) a delivery leaves from.

Sources are the ``[[egress.sources]]`` of the config; pools group them with weights. For one
message the pool is, in this order:

1. ``egress.domain_pools`` for the sending domain, or for its nearest parent domain listed
   (``news.example.com`` falls back to ``example.com``);
2. ``egress.stream_pools`` for the message's stream ("transactional", "bulk", ...);
3. ``egress.default_pool``;
4. every source, each with weight 1.

Within the pool a member is picked by smooth weighted round-robin (the nginx way: every
candidate gains its weight, the one with most credit is taken and pays back the total), so
weights 3:1 give exactly 30 and 10 picks out of 40, interleaved, and tests can count them.
Only members with warm-up allowance left for the message's provider today are candidates:
a warming address never takes the excess, the pool's other members do. When no member has
allowance, :meth:`Egress.choose` returns the time the next daily window opens and the
scheduler holds the mail until then.

Jobs in flight. The scheduler picks a source when a job enters a ready queue and reports the
sends after the attempt, so many jobs may be on their way to a warming address before the
first count arrives. Each choice of a capped source therefore *holds* one unit of its
allowance until :meth:`Egress.sent` (or :meth:`Egress.release`, for an attempt that sent
nothing) settles it; a hold not settled within :data:`HOLD_SECONDS` lapses, so a lost report
cannot block an address for good. Holds are per worker process; the node-wide counts and
their small possible overshoot are described in ``hayate.queue.warmup``.

Without any configured source the choice is always ``EgressChoice("default", None, None)``:
the system picks the address, the agent uses the hostname.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from hayate.config import EgressConfig, EgressSource
from hayate.core.envelope import nearest_listed

DEFAULT_SOURCE = "default"  # the name of the system's choice when no source is configured
HOLD_SECONDS = 900.0  # a choice of a capped source holds allowance at most this long


@dataclass(frozen=True, slots=True)
class EgressChoice:
    source: str  # source name ("default" when none configured)
    address: str | None  # local IP to bind, None: the system's choice
    helo: str | None  # EHLO name for it, None: the hostname


class WarmupLimits(Protocol):
    """What egress needs of ``hayate.queue.warmup.WarmupTracker`` (delivery must not import
    the queue package, so the tracker is passed in and typed by this shape)."""

    def remaining(self, source: str, provider: str | None, now: float) -> int | None: ...

    def consume(self, source: str, provider: str | None, count: int, now: float) -> None: ...

    def next_window(self, now: float) -> float: ...

    def cap(self, source: str, provider: str | None, now: float) -> int | None: ...

    def day(self, source: str, now: float) -> int | None: ...

    def used_by_provider(self, source: str, now: float) -> dict[str, int]: ...


class _Pool:
    """Members of one pool and their round-robin credit."""

    __slots__ = ("credit", "index", "members", "name")

    def __init__(self, name: str, members: list[tuple[EgressSource, int]]) -> None:
        self.name = name
        self.members = members
        self.credit = [0] * len(members)
        self.index = {src.name: i for i, (src, _) in enumerate(members)}

    def pick(self, allowed: list[bool]) -> EgressSource | None:
        total = 0
        best = -1
        credit = self.credit
        for i, (_, weight) in enumerate(self.members):
            if not allowed[i]:
                continue
            credit[i] += weight
            total += weight
            if best < 0 or credit[i] > credit[best]:
                best = i
        if best < 0:
            return None
        credit[best] -= total
        return self.members[best][0]


class Egress:
    """Picks the source of each delivery; see the module docstring."""

    def __init__(self, cfg: EgressConfig, hostname: str, warmup: WarmupLimits | None) -> None:
        self.cfg = cfg
        self.hostname = hostname
        self.warmup = warmup
        self._sources = {s.name: s for s in cfg.sources}
        self._pools = {
            p.name: _Pool(p.name, [(self._sources[m.source], m.weight) for m in p.sources])
            for p in cfg.pools
        }
        self._all = _Pool("(all sources)", [(s, 1) for s in cfg.sources])
        self._choices = {
            s.name: EgressChoice(s.name, s.address, s.helo or hostname) for s in cfg.sources
        }
        # (source, provider) → times of choices of a capped source not settled yet
        self._holds: dict[tuple[str, str | None], deque[float]] = {}

    def pool_for(self, sender_domain: str, stream: str) -> str | None:
        """Name of the pool a message uses; None: every source."""
        return self._pool(sender_domain, stream).name if self.cfg.sources else None

    def _pool(self, sender_domain: str, stream: str) -> _Pool:
        cfg = self.cfg
        name = nearest_listed(sender_domain, cfg.domain_pools)
        if name is not None:
            return self._pools[name]
        name = cfg.stream_pools.get(stream)
        if name is not None:
            return self._pools[name]
        if cfg.default_pool is not None:
            return self._pools[cfg.default_pool]
        return self._all

    def choose(
        self, sender_domain: str, stream: str, provider: str | None, now: float
    ) -> EgressChoice | float:
        """The source for one delivery, or (a float) when the next warm-up window opens."""
        if not self._sources:
            return EgressChoice(DEFAULT_SOURCE, None, None)
        pool = self._pool(sender_domain, stream)
        warmup = self.warmup
        if warmup is None:
            allowed = [True] * len(pool.members)
        else:
            allowed = []
            capped = []
            for src, _ in pool.members:
                left = self.remaining(src.name, provider, now)
                allowed.append(left is None or left > 0)
                capped.append(left is not None)
        source = pool.pick(allowed)
        if source is None:
            assert warmup is not None  # only warm-up caps can exclude every member
            return warmup.next_window(now)
        if warmup is not None and capped[pool.index[source.name]]:
            self._holds.setdefault((source.name, provider), deque()).append(now)
        return self._choices[source.name]

    def remaining(self, source: str, provider: str | None, now: float) -> int | None:
        """What ``source`` may still take for ``provider`` today, jobs in flight deducted;
        None: no cap."""
        if self.warmup is None:
            return None
        left = self.warmup.remaining(source, provider, now)
        if left is None:
            return None
        holds = self._holds.get((source, provider))
        if holds:
            while holds and holds[0] <= now - HOLD_SECONDS:
                holds.popleft()
            left -= len(holds)
        return max(0, left)

    def release(self, source: str, provider: str | None, now: float) -> None:
        """Settle one choice whose attempt sent nothing (deferred, bounced, not tried)."""
        holds = self._holds.get((source, provider))
        if holds:
            holds.popleft()

    def sent(self, source: str, provider: str | None, count: int, now: float) -> None:
        """Count ``count`` messages sent from ``source`` to ``provider`` against its warm-up
        cap, settling the hold of one choice (call it once per attempt that sent mail)."""
        if self.warmup is not None and source in self._sources:
            self.release(source, provider, now)
            self.warmup.consume(source, provider, count, now)

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per source: address, EHLO name, pools, warm-up day, today's cap, use per provider
        and choices still in flight (``hayate queue sites``)."""
        out: list[dict[str, object]] = []
        warmup = self.warmup
        for src in self.cfg.sources:
            pools = [p.name for p in self.cfg.pools if any(m.source == src.name for m in p.sources)]
            entry: dict[str, object] = {
                "source": src.name,
                "address": src.address,
                "helo": src.helo or self.hostname,
                "pools": pools,
                "warmup": src.warmup,
                "day": None,
                "cap": None,
                "used": {},
                "in_flight": {},
            }
            if warmup is not None and src.warmup is not None:
                entry["day"] = warmup.day(src.name, now)
                entry["cap"] = warmup.cap(src.name, None, now)
                entry["used"] = warmup.used_by_provider(src.name, now)
                entry["in_flight"] = {
                    provider or "other": len(h)
                    for (name, provider), h in self._holds.items()
                    if name == src.name and h
                }
            out.append(entry)
        return out
