"""Logged-in mailbox sessions per account in this process: the count behind
``[mailbox] max_connections_per_user``.

IMAP and POP3 share one :class:`SessionCounter` (the process-wide ``SESSIONS``), so a user
with a limit of 10 may hold, say, 9 IMAP sessions and 1 POP3 session of one worker process,
as Dovecot's ``mail_max_userip_connections`` counts both protocols. A session takes a slot
with :meth:`SessionCounter.acquire` after its password was checked and gives it back with
:meth:`SessionCounter.release` exactly once when it ends. Counts live in memory only: each
worker process counts its own sessions (the limit is per worker, as the config says).
"""

from __future__ import annotations


class SessionCounter:
    """Sessions per account address; an address with no session has no entry."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def count(self, address: str) -> int:
        """How many sessions ``address`` holds now."""
        return self._counts.get(address, 0)

    def acquire(self, address: str, limit: int) -> bool:
        """Take a slot for ``address`` unless it already holds ``limit``; False then."""
        held = self._counts.get(address, 0)
        if held >= limit:
            return False
        self._counts[address] = held + 1
        return True

    def release(self, address: str) -> None:
        """Give back one slot of ``address`` (taken by ``acquire``)."""
        left = self._counts.get(address, 0) - 1
        if left > 0:
            self._counts[address] = left
        else:
            self._counts.pop(address, None)


SESSIONS = SessionCounter()  # every IMAP and POP3 listener of this process
