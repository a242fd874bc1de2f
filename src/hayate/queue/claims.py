"""The node-wide connections one worker holds for one (egress source, site) path.

With several workers, a path's ``connections`` limit is counted in
:class:`~hayate.queue.contracts.ConnectionSlots` shared by the workers. A *claim* is one
connection counted there for this worker. A runner (one connection's worth of jobs, see
:mod:`hayate.queue.scheduler`) needs a claim to start.

When a runner ends, the SMTP session it used is not necessarily closed: the delivery agent's
pool keeps it idle for reuse for up to ``[delivery] idle_timeout`` (its sweeper looks every
quarter of that), and a session that reached ``messages_per_connection`` is still saying
QUIT. So the claim is *parked* for ``linger`` seconds instead of given back at once: the
receiver may still see that connection, and another worker must not open one in its place.

* A parked claim is reused by the next runner of this worker for the path (it will find the
  idle session, or wait for the closing one before connecting: the pool does both), unless
  another worker waits and this one should give way (it holds more than its share, or it
  has held claims for ``turn`` seconds while a waiting worker has none): then the parked
  claim is left to expire, which hands the connection to the waiting worker, and this
  worker takes no new claim for a moment.
* A parked claim whose time is up is released.
* A worker that could not get a claim is *wanting* until it gets one or has nothing left
  to send for the path (``unwant``).

Giving way costs the path one connection for ``linger`` seconds (the one that may still be
open). It happens when another worker starts wanting, and then once per ``turn`` when the
limit is smaller than the number of workers that have mail for the site.

Without shared slots (one worker, unit tests) the scheduler has no claims: its runner count
is the only limit, as before.
"""

from __future__ import annotations

from hayate.queue.contracts import ConnectionSlots

GIVE_WAY_MARGIN = 0.5  # seconds after a freed claim's release that others get it first


class PathClaims:
    """Claims of one path in this worker: running ones and parked ones; see module doc."""

    __slots__ = ("_parked", "_since", "_wanting", "held", "key", "linger", "slots", "turn")

    def __init__(self, slots: ConnectionSlots, key: str, linger: float) -> None:
        self.slots = slots
        self.key = key
        self.linger = linger
        self.turn = 4 * linger  # seconds of holding after which a starved worker goes first
        self.held = 0  # claims counted in the slots for this worker: runners + parked
        self._parked: list[float] = []  # until when each parked claim is kept
        self._since: float | None = None  # when this worker last went from 0 claims to 1
        self._wanting = False

    @property
    def parked(self) -> int:
        return len(self._parked)

    def claim(self, limit: int, now: float) -> bool:
        """A claim for one more runner: a parked one, else a new one from the slots."""
        if self._parked:
            turn_over = self._since is not None and now - self._since >= self.turn
            until = max(self._parked) + GIVE_WAY_MARGIN
            if self.slots.give_way(self.key, limit, now, turn_over, until):
                return False  # the parked claims expire to the waiting worker
            self._parked.pop()  # the newest: its session is the most likely still idle
            return True
        if self.slots.acquire(self.key, limit, now):
            if self.held == 0:
                self._since = now
            self.held += 1
            self._wanting = False
            return True
        self._wanting = True
        return False

    def park(self, now: float) -> None:
        """A runner ended: keep its claim until its connection is surely gone."""
        self._parked.append(now + self.linger)

    def next_expiry(self) -> float | None:
        return min(self._parked) if self._parked else None

    def expire(self, now: float) -> int:
        """Release the parked claims whose time is up; returns how many."""
        keep = [until for until in self._parked if until > now]
        gone = len(self._parked) - len(keep)
        self._parked = keep
        for _ in range(gone):
            self._release_one()
        return gone

    def unwant(self) -> None:
        """Nothing more waits for a connection of this path here."""
        if self._wanting:
            self._wanting = False
            self.slots.unwant(self.key)

    def release_all(self) -> None:
        """Give back every claim (the scheduler stops; its runners are over)."""
        self._parked.clear()
        while self.held:
            self._release_one()
        self.unwant()

    def node_held(self) -> int:
        """Connections of the path counted over every worker."""
        return self.slots.held(self.key)

    def _release_one(self) -> None:
        self.held -= 1
        if self.held == 0:
            self._since = None
        self.slots.release(self.key)
