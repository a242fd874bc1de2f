"""Logged-in mailbox sessions per account: the count behind ``[mailbox] max_connections_per_user``.

IMAP and POP3 share one :class:`SessionCounter` (the process-wide ``SESSIONS``), so a user
with a limit of 10 may hold, say, 9 IMAP sessions and 1 POP3 session, as Dovecot's
``mail_max_userip_connections`` counts both protocols. A session takes a slot with
:meth:`SessionCounter.acquire` after its password was checked and gives it back with
:meth:`SessionCounter.release` exactly once when it ends.

Each process counts its own sessions; under ``hayate serve`` with several workers the count
is also kept node-wide (:meth:`SessionCounter.share`): a slot is then taken in the workers'
shared table too (:class:`hayate.core.sharedtable.NodeSlots`, key ``session:<address>``), so
the limit holds for the node, and a worker that dies has its slots freed with the rest of
its share of the table. When that table is full, the worker falls back to its share of the
limit (``limit // workers``, at least 1).
"""

from __future__ import annotations

import time
from typing import Protocol


class SharedSlots(Protocol):
    """Counts per key over the node's workers (``hayate.core.sharedtable.NodeSlots``)."""

    def acquire(self, key: str, limit: int, now: float, fair: bool = True) -> bool: ...
    def release(self, key: str) -> None: ...


class SessionCounter:
    """Sessions per account address; an address with no session has no entry."""

    __slots__ = ("_counts", "_node")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._node: SharedSlots | None = None

    def share(self, node: SharedSlots | None) -> None:
        """Count node-wide through ``node`` too (a worker of ``hayate serve``, before it
        serves), or only here again with None."""
        self._node = node

    def count(self, address: str) -> int:
        """How many sessions ``address`` holds in this process now."""
        return self._counts.get(address, 0)

    def acquire(self, address: str, limit: int) -> bool:
        """Take a slot for ``address`` unless it already holds ``limit`` (here, or over the
        node when shared); False then."""
        held = self._counts.get(address, 0)
        if held >= limit:
            return False
        node = self._node
        # fair=False: a plain count; a login within the limit is never refused so that another
        # worker may take its turn (that is for shaping's connections).
        if node is not None and not node.acquire(_key(address), limit, time.monotonic(),
                                                 fair=False):
            return False
        self._counts[address] = held + 1
        return True

    def release(self, address: str) -> None:
        """Give back one slot of ``address`` (taken by ``acquire``)."""
        held = self._counts.get(address, 0)
        if held <= 0:
            return
        if self._node is not None:
            self._node.release(_key(address))
        if held > 1:
            self._counts[address] = held - 1
        else:
            del self._counts[address]


def _key(address: str) -> str:
    return "session:" + address


SESSIONS = SessionCounter()  # every IMAP and POP3 listener of this process
