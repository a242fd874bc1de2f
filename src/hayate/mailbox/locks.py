"""The POP3 maildrop lock (RFC 1939: "the POP3 server then acquires an exclusive-access lock
on the maildrop"), kept in the store so that it holds across worker processes and nodes.

A lock is one row per account address naming its holder (a string unique to the session,
e.g. ``"node-a:1234:7"``) and when it expires. :meth:`MailboxLocks.acquire` takes a free or
expired lock (the holder may take its own again); a session that lives longer than the time
to live calls :meth:`MailboxLocks.refresh` now and then; :meth:`MailboxLocks.release` gives
it back. A session that dies without releasing blocks the maildrop until the lock expires,
so keep the time to live near the session's idle timeout.
"""

from __future__ import annotations

from hayate.store.addresses import normalize_address
from hayate.store.base import InvalidAddress, Store


def _key(address: str) -> str:
    try:
        return normalize_address(address)
    except InvalidAddress:
        return address.strip().lower()


class MailboxLocks:
    """Exclusive, expiring locks on accounts' maildrops."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def acquire(self, address: str, holder: str, ttl: float) -> bool:
        """True when ``holder`` now holds the lock for ``ttl`` seconds."""
        _check(holder, ttl)
        return await self.store.acquire_lock(_key(address), holder, ttl)

    async def refresh(self, address: str, holder: str, ttl: float) -> bool:
        """Extend the lock to ``ttl`` seconds from now; False when ``holder`` lost it."""
        _check(holder, ttl)
        return await self.store.refresh_lock(_key(address), holder, ttl)

    async def release(self, address: str, holder: str) -> None:
        """Give the lock back (nothing happens when ``holder`` does not hold it)."""
        await self.store.release_lock(_key(address), holder)


def _check(holder: str, ttl: float) -> None:
    if not holder:
        raise ValueError("a lock holder needs a name")
    if ttl <= 0:
        raise ValueError("a lock's time to live must be above 0")
