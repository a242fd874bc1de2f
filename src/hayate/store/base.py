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
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, TypeAlias

from hayate.core.events import DeliveryEvent

INBOX = "INBOX"
ANY_DOMAIN = "*"  # a suppression entry for every sending domain
SUPPRESSION_SOURCES = ("hard-bounce", "soft-bounces", "complaint", "manual")
# The folders every account gets besides INBOX, with their RFC 6154 special use (the same
# list as hayate.mailbox.model.DEFAULT_FOLDERS; the store cannot import the mailbox layer).
DEFAULT_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
HIERARCHY_SEPARATOR = "/"

UidRanges: TypeAlias = tuple[tuple[int, int], ...]  # sorted inclusive (first, last) ranges
FlagMode: TypeAlias = Literal["set", "add", "remove"]
# A message as read in bulk: (uid, modseq, internaldate, size, flags space separated, body
# or None). Plain rows straight from the database: no object per message in the store.
MessageRow: TypeAlias = tuple[int, int, float, int, str, bytes | None]


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
class FolderRecord:
    """A folder as the mailbox service sees it: a mailbox with its id."""

    id: int  # stable while the folder exists, never reused
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class FolderCounts:
    """A folder and the counts IMAP STATUS reports."""

    folder: FolderRecord
    messages: int
    recent: int  # messages with a UID at or above the folder's first \Recent UID
    unseen: int
    size: int
    deleted: int


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """What happened in a folder after a modseq: new or changed messages, expunged UIDs."""

    highestmodseq: int
    uidnext: int
    changed: list[StoredMessage]  # ascending UID
    # Ascending. Below the folder's vanished floor (old tombstones pruned) a superset: every
    # UID under UIDNEXT the folder no longer holds, so possibly UIDs gone long before.
    vanished: list[int]


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


class MailboxRefused(StoreError):
    """A folder operation that the rules forbid (a folder with children cannot be deleted,
    one cannot be renamed under itself...); the message says why."""


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

    # -- the mailbox service (hayate.mailbox.service) ------------------------------------
    #
    # Folders are named by full name ("a/b", "INBOX") within an account given by its id
    # (``open_folders``); messages by folder id and UID. Every change takes the next
    # HIGHESTMODSEQ of its folder and stamps it on the message, or on the tombstone of an
    # expunged UID. Flags are stored as given (the service canonicalizes them); \Recent is
    # not a stored flag but every UID at or above the folder's recent mark.

    @abstractmethod
    async def open_folders(self, address: str) -> int:
        """The account's id; creates the default folders an account made before they
        existed lacks (once). Raises NoSuchAccount."""

    @abstractmethod
    async def account_quota(self, address: str) -> tuple[int, int] | None:
        """(used bytes, quota bytes; 0 for none) of an account, None when there is none."""

    @abstractmethod
    async def list_folders(self, account_id: int) -> list[FolderRecord]:
        """Every folder of the account, INBOX first, then by name."""

    @abstractmethod
    async def get_folder(self, account_id: int, name: str) -> FolderRecord | None: ...

    @abstractmethod
    async def create_folder(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> FolderRecord:
        """Create ``name`` and its missing parents. Raises MailboxExists."""

    @abstractmethod
    async def delete_folder(self, account_id: int, name: str) -> None:
        """Delete a folder with its messages (their bytes leave the quota). Raises
        NoSuchMailbox; MailboxRefused for INBOX and for a folder with children."""

    @abstractmethod
    async def rename_folder(self, account_id: int, old: str, new: str) -> None:
        """Rename a folder with its children, creating missing parents of ``new``. INBOX
        gives its messages (same UIDs) to a new folder and stays, empty. Raises
        NoSuchMailbox, MailboxExists, MailboxRefused (renaming under itself)."""

    @abstractmethod
    async def subscribe_folder(self, account_id: int, name: str, subscribed: bool) -> bool:
        """False when there is no such folder."""

    @abstractmethod
    async def folder_status(self, account_id: int, name: str) -> FolderCounts | None:
        """The folder and its counts in one query; None when there is no such folder."""

    @abstractmethod
    async def folder_versions(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(highestmodseq, uidnext) of each folder that still exists."""

    @abstractmethod
    async def folder_uids(self, folder_id: int) -> array[int]:
        """Every UID of the folder, ascending, as an ``array('I')``."""

    @abstractmethod
    async def folder_messages(
        self,
        folder_id: int,
        uids: UidRanges | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        bodies: bool = False,
    ) -> list[MessageRow]:
        """Messages with a UID above ``after`` (within ``uids`` when given), ascending, at
        most ``limit``; with their bodies when ``bodies`` (else None in their place)."""

    @abstractmethod
    async def folder_bodies(self, folder_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """The bodies of the UIDs that exist."""

    @abstractmethod
    async def folder_changes(self, folder_id: int, modseq: int) -> FolderChanges | None:
        """Changes with a modseq above ``modseq``, read in one snapshot; None when the
        folder is gone."""

    @abstractmethod
    async def first_unseen(self, folder_id: int) -> int | None: ...

    @abstractmethod
    async def folder_flag_sets(self, folder_id: int) -> list[str]:
        """Each distinct set of flags in the folder, as stored (space separated), ordered by
        the lowest UID that carries it."""

    @abstractmethod
    async def claim_recent(self, folder_id: int) -> int | None:
        """Move the folder's recent mark to UIDNEXT; returns where it was (None when the
        folder is gone)."""

    @abstractmethod
    async def append_message(
        self,
        account_id: int,
        name: str,
        data: bytes,
        flags: tuple[str, ...] = (),
        internaldate: float | None = None,
    ) -> tuple[int, int]:
        """Store a message; (uidvalidity, uid). Raises NoSuchMailbox, QuotaExceeded."""

    @abstractmethod
    async def store_flags(
        self,
        account_id: int,
        folder_id: int,
        uids: UidRanges,
        mode: FlagMode,
        flags: tuple[str, ...],
        unchanged_since: int | None = None,
    ) -> tuple[list[StoredMessage], list[int]]:
        """(messages whose flags changed, with their new modseq; UIDs left alone because
        their modseq is above ``unchanged_since``). Keywords compare case-insensitively.
        Raises NoSuchMailbox."""

    @abstractmethod
    async def expunge(
        self,
        account_id: int,
        folder_id: int,
        uids: UidRanges | None = None,
        *,
        flagged_only: bool = True,
    ) -> list[int]:
        """Remove the messages flagged \\Deleted (within ``uids`` when given; every message
        within ``uids`` when not ``flagged_only``); their UIDs, ascending. Raises
        NoSuchMailbox."""

    @abstractmethod
    async def copy_messages(
        self, account_id: int, folder_id: int, uids: UidRanges, target: str, *, move: bool
    ) -> tuple[int, list[tuple[int, int]]]:
        """Copy (or move, in the same transaction) to the folder named ``target``; returns
        its uidvalidity and (old UID, new UID) pairs. A copy is quota-checked. Raises
        NoSuchMailbox, QuotaExceeded."""

    @abstractmethod
    async def find_folders(self, name_or_special_use: str) -> list[int]:
        """Ids of every account's folders with that name, or that special use when it
        starts with a backslash (retention rules)."""

    @abstractmethod
    async def expunge_older(self, folder_id: int, before: float, limit: int) -> int:
        """Expunge at most ``limit`` messages with an internal date before ``before``
        (lowest UIDs first); returns how many went."""

    @abstractmethod
    async def acquire_lock(self, account: str, holder: str, ttl: float) -> bool:
        """Take the lock named ``account`` for ``ttl`` seconds unless someone else holds it
        unexpired (the holder itself re-takes it)."""

    @abstractmethod
    async def refresh_lock(self, account: str, holder: str, ttl: float) -> bool:
        """Extend a lock still held by ``holder``."""

    @abstractmethod
    async def release_lock(self, account: str, holder: str) -> None: ...

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
