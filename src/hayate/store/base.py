"""The store's one async interface (:class:`Store`), the values it returns and its errors.

The store keeps the state shared by every worker and node that is not mail in flight:
accounts (with argon2 password hashes), aliases, and the mailbox store (mail delivered to
local accounts, read later over IMAP and POP3). Two engines implement it: SQLite
(``hayate.store.sqlite``) and PostgreSQL (``hayate.store.postgres``).

Addresses. Every address is stored lower-cased as a whole and compared that way: the domain
is case-insensitive by RFC 5321 and the local part is treated case-insensitively too, like
most providers do (``Bob@Example.COM`` and ``bob@example.com`` are the same account). An
address must hold exactly one ``@`` with text on both sides; anything else raises
:class:`InvalidAddress`.

Errors. Everything the store raises on purpose is a :class:`StoreError`; failures of the
database engine itself (disk full, lost connection, lock wait too long) are re-raised as a
plain :class:`StoreError` with the engine's exception as ``__cause__``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from hayate.core.events import DeliveryEvent

INBOX = "INBOX"
ANY_DOMAIN = "*"  # a suppression entry for every sending domain
SUPPRESSION_SOURCES = ("hard-bounce", "soft-bounces", "complaint", "manual")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Account:
    """A local account. ``quota_bytes`` 0 means unlimited; ``used_bytes`` sums its messages."""

    address: str
    created: float  # seconds since the epoch
    quota_bytes: int = 0
    used_bytes: int = 0
    disabled: bool = False  # a disabled account still receives mail but cannot log in


@dataclass(frozen=True, slots=True)
class Alias:
    """``source`` is ``user@domain`` or a catch-all ``@domain``; targets keep their order."""

    source: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """One folder of an account, with the IMAP counters kept for it."""

    name: str
    uidvalidity: int
    uidnext: int  # the UID the next delivered message gets
    highestmodseq: int  # bumped by every delivery and deletion (CONDSTORE)
    special_use: str | None = None  # RFC 6154 attribute such as "\\Sent", None for INBOX
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A delivered message without its body (fetch that with ``Store.fetch_message``)."""

    uid: int
    modseq: int
    internaldate: float  # seconds since the epoch: when it was delivered unless given
    size: int  # bytes of the message as stored
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression-list entry: mail from ``domain`` (or any domain for ``*``) to
    ``address`` is not sent. ``source`` is one of :data:`SUPPRESSION_SOURCES`."""

    domain: str
    address: str
    reason: str  # bounce reason category, "complaint", or the operator's text
    source: str
    created: float  # seconds since the epoch
    detail: str = ""  # e.g. the remote's status and reply, or the queue id


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """Anything the store refuses or fails to do."""


class InvalidAddress(StoreError, ValueError):
    """Not ``local@domain`` with exactly one ``@`` (or ``@domain`` where a catch-all fits)."""


class AccountExists(StoreError):
    def __init__(self, address: str) -> None:
        super().__init__(f"account {address} already exists")
        self.address = address


class NoSuchAccount(StoreError):
    def __init__(self, address: str) -> None:
        super().__init__(f"no account {address}")
        self.address = address


class NoSuchMailbox(StoreError):
    def __init__(self, address: str, mailbox: str) -> None:
        super().__init__(f"account {address} has no mailbox {mailbox!r}")
        self.address = address
        self.mailbox = mailbox


class MailboxExists(StoreError):
    def __init__(self, address: str, mailbox: str) -> None:
        super().__init__(f"account {address} already has a mailbox {mailbox!r}")
        self.address = address
        self.mailbox = mailbox


class QuotaExceeded(StoreError):
    """A delivery would take the account past its quota; nothing was stored."""

    def __init__(self, address: str, quota_bytes: int, used_bytes: int, size: int) -> None:
        super().__init__(
            f"mailbox of {address} is full: {used_bytes} of {quota_bytes} bytes used, "
            f"message needs {size}"
        )
        self.address = address
        self.quota_bytes = quota_bytes
        self.used_bytes = used_bytes
        self.size = size


class AliasDepthExceeded(StoreError):
    """Alias expansion needed more than ``max_depth`` rewrites (a misconfiguration)."""

    def __init__(self, address: str, max_depth: int) -> None:
        super().__init__(f"alias expansion of {address} goes deeper than {max_depth} levels")
        self.address = address
        self.max_depth = max_depth


# --------------------------------------------------------------------------- interface


class Store(ABC):
    """Accounts, aliases and mailboxes behind one async interface.

    Life cycle: build it (``hayate.store.open_store``), ``await create()`` to connect,
    ``await migrate()`` to create or update the schema, ``await close()`` at the end.
    ``async with store:`` does create/close.
    """

    async def __aenter__(self) -> Self:
        await self.create()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def create(self) -> None:
        """Open the connection(s); the schema is not touched."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection(s); calling it twice is harmless."""

    @abstractmethod
    async def migrate(self) -> list[int]:
        """Create or update the schema idempotently; returns the versions applied now."""

    # -- accounts ------------------------------------------------------------------------

    @abstractmethod
    async def add_account(self, address: str, password: str, quota_bytes: int = 0) -> Account:
        """Create an account and its INBOX; raises AccountExists or InvalidAddress."""

    @abstractmethod
    async def delete_account(self, address: str) -> bool:
        """Delete an account with all its mailboxes and messages (its aliases stay)."""

    @abstractmethod
    async def get_account(self, address: str) -> Account | None: ...

    @abstractmethod
    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        """All accounts (of one domain), sorted by address."""

    @abstractmethod
    async def set_password(self, address: str, password: str) -> bool: ...

    @abstractmethod
    async def set_quota(self, address: str, quota_bytes: int) -> bool: ...

    @abstractmethod
    async def set_disabled(self, address: str, disabled: bool) -> bool: ...

    @abstractmethod
    async def authenticate(self, address: str, password: str) -> Account | None:
        """The account when the password is right and it is not disabled, else None.

        Takes about as long for a missing account as for a wrong password.
        """

    # -- aliases -------------------------------------------------------------------------

    @abstractmethod
    async def add_alias(self, source: str, targets: list[str]) -> Alias:
        """Set the targets of ``source``, replacing any it had before."""

    @abstractmethod
    async def delete_alias(self, source: str) -> bool: ...

    @abstractmethod
    async def get_alias(self, source: str) -> list[str] | None: ...

    @abstractmethod
    async def list_aliases(self) -> list[Alias]:
        """All aliases sorted by source."""

    @abstractmethod
    async def expand(self, address: str, max_depth: int = 10) -> list[str]:
        """The final addresses mail for ``address`` goes to (local accounts or remote).

        See ``hayate.store.ops.expand`` for the rules.
        """

    # -- mailboxes -----------------------------------------------------------------------

    @abstractmethod
    async def create_mailbox(
        self, address: str, name: str, special_use: str | None = None
    ) -> MailboxInfo: ...

    @abstractmethod
    async def list_mailboxes(self, address: str) -> list[MailboxInfo]: ...

    @abstractmethod
    async def deliver(
        self,
        address: str,
        data: bytes,
        mailbox: str = INBOX,
        flags: tuple[str, ...] = (),
        internaldate: float | None = None,
    ) -> int:
        """Store a message durably and return its UID.

        Raises NoSuchAccount, NoSuchMailbox or QuotaExceeded (nothing stored then).
        """

    @abstractmethod
    async def deliver_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        """Deliver (address, message) pairs to INBOXes in one transaction.

        All or nothing: when one item fails, nothing is stored and the error of that item
        is raised (its ``address`` attribute names it), so the caller can retry the others.
        UIDs come back in the order of ``items``.
        """

    @abstractmethod
    async def list_messages(self, address: str, mailbox: str = INBOX) -> list[StoredMessage]:
        """Metadata of every message of a mailbox, by ascending UID."""

    @abstractmethod
    async def fetch_message(self, address: str, mailbox: str, uid: int) -> bytes | None: ...

    @abstractmethod
    async def count_messages(self, address: str, mailbox: str = INBOX) -> int: ...

    @abstractmethod
    async def delete_message(self, address: str, mailbox: str, uid: int) -> bool: ...

    # -- suppression list ----------------------------------------------------------------

    @abstractmethod
    async def add_suppression(
        self,
        domain: str,
        address: str,
        reason: str = "",
        source: str = "manual",
        detail: str = "",
    ) -> bool:
        """Suppress ``address`` for ``domain`` ("*": every domain). True when new; an
        existing entry is kept as it was. Raises InvalidAddress, ValueError (source)."""

    @abstractmethod
    async def remove_suppression(self, address: str, domain: str | None = None) -> int:
        """Remove the entry for ``domain``, or every entry of ``address`` when None;
        returns how many went (the address's soft-bounce count is reset too)."""

    @abstractmethod
    async def list_suppressions(
        self, domain: str | None = None, address: str | None = None
    ) -> list[Suppression]:
        """Entries (of one domain exactly, of one address), sorted by domain and address."""

    @abstractmethod
    async def check_suppressions(self, domain: str, addresses: list[str]) -> set[str]:
        """Which of ``addresses`` (compared lower-cased, returned lower-cased) are
        suppressed for mail from ``domain``, counting "*" entries; one query per 500."""

    @abstractmethod
    async def note_soft_bounce(
        self,
        domain: str,
        address: str,
        *,
        window: float,
        limit: int,
        reason: str = "",
        detail: str = "",
    ) -> tuple[int, bool]:
        """Count one soft bounce now; at ``limit`` within ``window`` seconds the address is
        suppressed (source "soft-bounces"). Returns (count in window, suppressed)."""

    @abstractmethod
    async def prune_soft_bounces(self, before: float) -> int:
        """Forget soft bounces older than ``before`` (they are outside every window)."""

    # -- delivery events -----------------------------------------------------------------

    @abstractmethod
    async def insert_events(self, events: list[DeliveryEvent]) -> int:
        """Write a batch of events in one transaction (all or nothing)."""

    @abstractmethod
    async def query_events(
        self,
        *,
        recipient: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kind: str | None = None,
        queue_id: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryEvent]:
        """The newest ``limit`` events matching every filter given, oldest first.

        ``since`` is inclusive, ``until`` exclusive; ``recipient`` is compared lower-cased.
        """

    @abstractmethod
    async def event_sender(self, queue_id: str) -> str | None:
        """The original envelope sender an event recorded for ``queue_id``, if any."""

    @abstractmethod
    async def delete_events_before(self, time: float) -> int:
        """Retention: delete events older than ``time``; returns how many."""
