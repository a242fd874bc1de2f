"""What a POP3 session does with the store: log in, read messages, carry out the UPDATE state.

Login (:meth:`Pop3Backend.login`) first counts the attempt with the process-wide
``LoginGuard`` (per address and client IP, shared with IMAP; over its limit: ``AuthRefused``
without checking the password), then checks the password (``Store.authenticate``: argon2, the
same for a missing account as for a wrong password), takes the maildrop lock, then takes the
snapshot of INBOX (UID and size of each message, read in bounded batches without bodies).
The lock (RFC 1939: "the POP3 server then acquires an exclusive-access lock on the
maildrop") lives in the store through ``MailboxLocks``, so it holds across worker processes
and nodes. It has a time to live that the session refreshes while it lives; a process that
crashed leaves a lock that expires after at most ``lock_ttl`` seconds.

Login counts the session in ``hayate.mailbox.sessions`` (shared with IMAP) before taking the
lock: an account already holding ``max_sessions_per_user`` sessions in this process is refused
(``TooManySessions``); :meth:`Pop3Backend.end_session` gives the slot back.

Login also ends \\Recent for the messages it sees, like Dovecot's POP3 (IMAP sessions opened
later do not show them as recent).

UPDATE (after QUIT) flags the messages retrieved with RETR \\Seen and expunges the ones
marked with DELE: exactly those UIDs, whatever their flags, in one transaction
(``Mailboxes.remove``), so a failure leaves the session's DELEs undone as a whole and
messages another client flagged \\Deleted stay. A session that ends without QUIT deletes
nothing; its \\Seen marks are still applied (Dovecot's default, ``pop3_no_flag_updates =
no``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hayate.config import MailboxConfig
from hayate.mailbox.login_guard import LoginGuard, login_guard_for
from hayate.mailbox.model import SEEN, Folder, Mailboxes, ranges_of
from hayate.mailbox.sessions import SESSIONS, SessionCounter
from hayate.pop3.maildrop import Maildrop
from hayate.store.base import Store

INBOX = "INBOX"


class MaildropLocks(Protocol):
    """``hayate.mailbox.locks.MailboxLocks``: one holder per address until it expires."""

    async def acquire(self, address: str, holder: str, ttl: float) -> bool: ...

    async def refresh(self, address: str, holder: str, ttl: float) -> bool: ...

    async def release(self, address: str, holder: str) -> None: ...


MailboxesFactory = Callable[[Store, str], Mailboxes]


@dataclass(frozen=True, slots=True)
class OpenMaildrop:
    """A logged-in session's account, its INBOX and the snapshot taken at login."""

    address: str
    mailboxes: Mailboxes
    folder: Folder
    maildrop: Maildrop


class AuthFailed(Exception):
    """Wrong user name or password, or a disabled account."""


class AuthRefused(AuthFailed):
    """Too many recent failures for this address or client: the password was not checked."""


class MaildropInUse(Exception):
    """Another session holds the maildrop lock."""


class TooManySessions(Exception):
    """The account holds its most IMAP and POP3 sessions already."""


class Pop3Backend:
    """The store side of every POP3 session of one server."""

    def __init__(
        self,
        store: Store,
        *,
        mailboxes: MailboxesFactory | None = None,
        locks: MaildropLocks | None = None,
        lock_ttl: float = 60.0,
        scan_batch: int = 1000,
        sessions: SessionCounter = SESSIONS,
        max_sessions_per_user: int = 20,
        login_guard: LoginGuard | None = None,
    ) -> None:
        self.store = store
        self.login_guard = login_guard or login_guard_for(MailboxConfig())
        self.sessions = sessions
        self.max_sessions_per_user = max_sessions_per_user
        if mailboxes is None:
            from hayate.mailbox.service import StoreMailboxes

            mailboxes = StoreMailboxes
        if locks is None:
            from hayate.mailbox.locks import MailboxLocks

            locks = MailboxLocks(store)
        self.mailboxes = mailboxes
        self.locks = locks
        self.lock_ttl = lock_ttl
        self.scan_batch = scan_batch

    async def login(
        self, username: str, password: str, holder: str, client_ip: str = ""
    ) -> OpenMaildrop:
        """Raises AuthRefused, AuthFailed, TooManySessions, MaildropInUse, or the store's
        errors (nothing stays locked or counted). A successful login holds a session slot:
        give it back with ``end_session``."""
        guard = self.login_guard
        if not guard.begin(username, client_ip):
            raise AuthRefused(username)
        try:
            account = await self.store.authenticate(username, password)
        except BaseException:
            guard.abandon(username, client_ip)
            raise
        if account is None:
            raise AuthFailed(username)
        guard.succeeded(username, client_ip)
        address = account.address
        if not self.sessions.acquire(address, self.max_sessions_per_user):
            raise TooManySessions(address)
        try:
            return await self._open(address, holder)
        except BaseException:
            self.sessions.release(address)
            raise

    async def _open(self, address: str, holder: str) -> OpenMaildrop:
        if not await self.locks.acquire(address, holder, self.lock_ttl):
            raise MaildropInUse(address)
        try:
            mailboxes = self.mailboxes(self.store, address)
            folder = await mailboxes.folder(INBOX)
            await mailboxes.claim_recent(folder)
            messages: list[tuple[int, int]] = []
            async for batch in mailboxes.scan(folder, bodies=False, batch=self.scan_batch):
                messages.extend((info.uid, info.size) for info, _ in batch)
            maildrop = Maildrop(folder.uidvalidity, messages)
        except BaseException:
            await self.locks.release(address, holder)
            raise
        return OpenMaildrop(address, mailboxes, folder, maildrop)

    async def body(self, opened: OpenMaildrop, uid: int) -> bytes | None:
        return await opened.mailboxes.body(opened.folder, uid)

    async def update(
        self, opened: OpenMaildrop, deleted: Sequence[int], seen: Sequence[int]
    ) -> int:
        """Flag ``seen`` \\Seen, then expunge ``deleted`` in one transaction (whatever their
        flags: nothing is left half done when it fails); returns how many were expunged."""
        mailboxes, folder = opened.mailboxes, opened.folder
        if seen:
            await mailboxes.store_flags(folder, ranges_of(sorted(seen)), "add", [SEEN])
        if not deleted:
            return 0
        return len(await mailboxes.remove(folder, ranges_of(sorted(deleted))))

    async def refresh(self, address: str, holder: str) -> bool:
        return await self.locks.refresh(address, holder, self.lock_ttl)

    async def release(self, address: str, holder: str) -> None:
        await self.locks.release(address, holder)

    def end_session(self, address: str) -> None:
        """The logged-in session of ``address`` ended: give back its slot."""
        self.sessions.release(address)
