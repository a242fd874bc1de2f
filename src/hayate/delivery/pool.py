"""Connection reuse and concurrency limits for outbound SMTP, keyed per destination.

A key is ``(destination, source_ip)``: the queue's destination (a domain or a transport
nexthop) and the local address the connections leave from (None: the system's choice).
A cached session is handed out only to a delivery that uses the same EHLO name as well (the
name goes with the source address: a receiver checks it against the address's PTR).

For each key the pool keeps
- a slot counter: at most ``limit`` deliveries at once; further callers wait in FIFO order
  and a released slot is handed straight to the oldest waiter;
- a stack of idle sessions (last in, first out, so the warmest connection is reused and the
  others age out), each closed with QUIT after ``idle_timeout`` seconds unused or once it has
  carried ``max_uses`` transactions (a job may bring its own, smaller limit). One sweeper
  timer for the whole pool closes the expired ones (at most every ``idle_timeout / 4``
  seconds, so a session may linger up to a quarter longer); a session found expired when
  taken is closed instead of used.
A delivery opens a new connection only when no idle one is left, so the number of open
connections per key never exceeds ``limit`` either. Sessions that are done are *retired*:
sent QUIT and left to close in the background; :meth:`ConnectionPool.close` waits for them.

**Node-wide** (``hayate serve`` with several workers, :meth:`ConnectionPool.share`): the
limit holds for the node. A worker then also needs a *claim* per slot, counted for every
worker in the shared slots (:class:`hayate.core.sharedtable.NodeSlots`). A claim stays with
the worker as long as the connection may exist: while its delivery runs, while the session
is idle here, and while it is closing; so a worker holds ``active + idle + closing`` claims
at most, and the receiver never sees more connections from the node than ``limit``. A
delivery reuses a claim the worker already holds (it takes the idle session, or waits for
the closing one: see :meth:`settled`); otherwise it asks the shared slots, and when the
other workers hold them all it waits, trying again every ``NODE_RETRY`` seconds (a slot
released here is handed to a local waiter at once, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from hayate.delivery.client import QUIT_GRACE, SmtpClient

PoolKey = tuple[str, str | None]

NODE_RETRY = 0.1  # seconds between tries for a slot the other workers hold


class SharedSlots(Protocol):
    """Connections per key counted over the node's workers (``core.sharedtable.NodeSlots``)."""

    def acquire(self, key: str, limit: int, now: float) -> bool: ...
    def release(self, key: str) -> None: ...


@dataclass(slots=True)
class _Idle:
    client: SmtpClient
    since: float  # loop time when it became idle


@dataclass(slots=True)
class _Destination:
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    idle: list[_Idle] = field(default_factory=list)
    claims: int = 0  # node-wide slots held by this worker (shared mode only)
    retry: asyncio.TimerHandle | None = None  # next try for node-wide slots (shared mode)


class ConnectionPool:
    """Slots and idle SMTP sessions per (destination, source address)."""

    def __init__(self, limit: int, idle_timeout: float, max_uses: int) -> None:
        if limit < 1:
            raise ValueError("connections per destination must be at least 1")
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.max_uses = max_uses
        self._dests: dict[PoolKey, _Destination] = {}
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._closing: set[SmtpClient] = set()  # sent QUIT, not closed yet
        self._closing_by_key: dict[PoolKey, set[SmtpClient]] = {}
        self._node: SharedSlots | None = None

    def share(self, slots: SharedSlots) -> None:
        """Hold the limit node-wide through ``slots`` (before the first delivery)."""
        self._node = slots

    # -- slots -----------------------------------------------------------------------
    async def acquire(self, key: PoolKey) -> None:
        """Wait for a delivery slot of ``key``; pair every call with :meth:`release`."""
        dest = self._dests.get(key)
        if dest is None:
            dest = self._dests[key] = _Destination()
        if dest.active < self.limit and not dest.waiters and self._claim(key, dest):
            dest.active += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        dest.waiters.append(fut)
        if dest.active < self.limit:  # only the node-wide count is in the way
            self._retry_later(key, dest)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key)  # the slot was handed over just as we were cancelled
            elif fut in dest.waiters:
                dest.waiters.remove(fut)
            raise

    def release(self, key: PoolKey) -> None:
        dest = self._dests[key]
        if self._hand_over(dest):
            return  # ``active`` (and the claim) stay the same
        dest.active -= 1
        self._settle(key, dest)
        self._forget_if_unused(key, dest)

    def _hand_over(self, dest: _Destination) -> bool:
        while dest.waiters:
            fut = dest.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return True
        return False

    # -- node-wide claims (shared mode) ----------------------------------------------
    def _claim(self, key: PoolKey, dest: _Destination) -> bool:
        """A claim for one more delivery: one held already (its session idle or closing
        here), or a new one from the node's slots."""
        node = self._node
        if node is None or dest.claims > dest.active:
            return True
        if node.acquire(_node_key(key), self.limit, time.monotonic()):
            dest.claims += 1
            return True
        return False

    def _settle(self, key: PoolKey, dest: _Destination) -> None:
        """Give back the claims no connection of this worker can be using any more."""
        node = self._node
        if node is None:
            return
        needed = dest.active + len(dest.idle) + len(self._closing_by_key.get(key, ()))
        while dest.claims > needed:
            dest.claims -= 1
            node.release(_node_key(key))

    def _retry_later(self, key: PoolKey, dest: _Destination) -> None:
        if dest.retry is None:
            dest.retry = asyncio.get_running_loop().call_later(
                NODE_RETRY, self._retry, key, dest
            )

    def _retry(self, key: PoolKey, dest: _Destination) -> None:
        """Try the node's slots again for the waiting deliveries."""
        dest.retry = None
        while dest.waiters and dest.active < self.limit and self._claim(key, dest):
            dest.active += 1
            if not self._hand_over(dest):  # every waiter gave up meanwhile
                dest.active -= 1
        self._settle(key, dest)
        if dest.waiters and dest.active < self.limit:
            self._retry_later(key, dest)
        self._forget_if_unused(key, dest)

    def active(self, key: PoolKey) -> int:
        dest = self._dests.get(key)
        return dest.active if dest else 0

    # -- idle sessions ---------------------------------------------------------------
    def take_idle(
        self, key: PoolKey, helo: str | None = None, max_uses: int | None = None
    ) -> SmtpClient | None:
        """A cached session for ``key`` that still looks alive, or None.

        With ``helo`` only a session that said that EHLO name is taken; if there is none,
        one idle session with another name is closed, so that the new connection the caller
        opens keeps the number of connections per key within the limit. ``max_uses``
        (default: the pool's) retires sessions that have carried that many transactions.
        """
        dest = self._dests.get(key)
        if dest is None or not dest.idle:
            return None
        oldest = asyncio.get_running_loop().time() - self.idle_timeout
        limit = self.max_uses if max_uses is None else max_uses
        idle = dest.idle
        other: _Idle | None = None
        for item in reversed(list(idle)):  # newest first
            client = item.client
            spent = client.transactions >= limit
            expired = self.idle_timeout > 0 and item.since <= oldest
            if not client.usable or spent or expired:
                idle.remove(item)
                self.retire(client, key)
            elif helo is None or client.helo_name == helo:
                idle.remove(item)
                client.reused = True
                return client
            elif other is None:
                other = item
        if other is not None:
            idle.remove(other)
            self.retire(other.client, key)
        return None

    def put_idle(self, key: PoolKey, client: SmtpClient, max_uses: int | None = None) -> None:
        """Keep ``client`` for the next delivery to ``key``, or close it if it is spent."""
        limit = self.max_uses if max_uses is None else max_uses
        if self._closed or not client.usable or client.transactions >= limit:
            self.retire(client, key)
            return
        dest = self._dests.get(key)
        if dest is None:
            dest = self._dests[key] = _Destination()
        loop = asyncio.get_running_loop()
        dest.idle.append(_Idle(client, loop.time()))
        if self._sweeper is None and self.idle_timeout > 0:
            self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    def idle_count(self, key: PoolKey | None = None) -> int:
        if key is not None:
            dest = self._dests.get(key)
            return len(dest.idle) if dest else 0
        return sum(len(d.idle) for d in self._dests.values())

    def _sweep(self) -> None:
        """Close every session idle for ``idle_timeout``; re-arm for the next one to expire."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        oldest = now - self.idle_timeout
        next_expiry: float | None = None
        for key, dest in list(self._dests.items()):
            if not dest.idle:
                continue
            keep = []
            for item in dest.idle:  # oldest first
                if item.since <= oldest or not item.client.usable:
                    self.retire(item.client, key)
                else:
                    keep.append(item)
            dest.idle = keep
            self._settle(key, dest)
            if keep:
                expiry = keep[0].since + self.idle_timeout
                next_expiry = expiry if next_expiry is None else min(next_expiry, expiry)
            else:
                self._forget_if_unused(key, dest)
        if next_expiry is not None:
            when = max(next_expiry, now + self.idle_timeout / 4)
            self._sweeper = loop.call_at(when, self._sweep)

    def _forget_if_unused(self, key: PoolKey, dest: _Destination) -> None:
        if dest.active == 0 and not dest.waiters and not dest.idle and not dest.claims:
            if dest.retry is not None:
                dest.retry.cancel()
                dest.retry = None
            self._dests.pop(key, None)

    # -- closing -------------------------------------------------------------------------
    def retire(self, client: SmtpClient, key: PoolKey | None = None) -> None:
        """Send QUIT and let it close in the background; :meth:`close` waits for it, and
        so does :meth:`settled` for ``key``."""
        client.quit_nowait()
        self.track(client, key)
        dest = self._dests.get(key) if key is not None and self._node is not None else None
        if dest is not None and key is not None:
            self._settle(key, dest)  # a session that was closed already frees its claim

    def track(self, client: SmtpClient, key: PoolKey | None = None) -> None:
        """Remember a closing connection so that :meth:`close` (and :meth:`settled` for
        ``key``) can wait for it."""
        if client.closed and client.wait_closed_done():
            return
        self._closing.add(client)
        client.on_closed(self._closing.discard)
        if key is not None:
            closing = self._closing_by_key.setdefault(key, set())
            closing.add(client)
            client.on_closed(lambda c: self._forget_closed(key, c))

    def _forget_closed(self, key: PoolKey, client: SmtpClient) -> None:
        closing = self._closing_by_key.get(key)
        if closing is not None:
            closing.discard(client)
            if not closing:
                del self._closing_by_key[key]
        dest = self._dests.get(key)
        if dest is not None and dest.claims:
            self._settle(key, dest)
            self._forget_if_unused(key, dest)

    async def settled(self, key: PoolKey) -> None:
        """Wait (at most QUIT_GRACE) until the sessions of ``key`` that were sent QUIT are
        gone. Called before a new connection for ``key`` is opened, so that the receiver
        never sees more connections at once than the delivery slots of the key."""
        closing = self._closing_by_key.get(key)
        if closing:
            await wait_closed(list(closing), QUIT_GRACE)

    # -- shutdown --------------------------------------------------------------------
    async def close(self) -> None:
        """QUIT every idle session; sessions in use are closed when they come back."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        clients: list[SmtpClient] = []
        for key, dest in list(self._dests.items()):
            for item in dest.idle:
                clients.append(item.client)
            dest.idle.clear()
            self._forget_if_unused(key, dest)
        if clients:
            await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)
        if self._closing:
            await wait_closed(list(self._closing), QUIT_GRACE + 1.0)
        for key, dest in list(self._dests.items()):  # the idle sessions are gone now
            self._settle(key, dest)
            self._forget_if_unused(key, dest)


def _node_key(key: PoolKey) -> str:
    return f"pool\x1f{key[0]}\x1f{key[1] or ''}"


async def wait_closed(clients: Iterable[SmtpClient], timeout: float) -> None:
    """Wait until the connections of ``clients`` are gone, at most ``timeout`` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(c.wait_closed() for c in clients), return_exceptions=True)
