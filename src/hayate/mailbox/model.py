"""What the protocol servers (IMAP, POP3) see of an account's mailboxes: the values and the
one interface, :class:`Mailboxes`, bound to one account.

The interface is the contract between ``hayate.imap`` / ``hayate.pop3`` and the mailbox
service (``hayate.mailbox.service``), which implements it over the store. Nothing here does
I/O.

Change tracking. Every change to a folder (a delivery or APPEND, a flag change, an expunge)
takes the next value of the folder's ``highestmodseq`` and stamps it on the message (or on
the tombstone of an expunged UID). A session that knows the modseq it last saw asks
:meth:`Mailboxes.changes_since` for what happened after it: the messages that are new or
changed, and the UIDs that vanished. The same mechanism serves IMAP's untagged updates
(EXISTS / EXPUNGE / FETCH FLAGS), IDLE, CONDSTORE and QRESYNC, and works across worker
processes and nodes because it only reads the store.

UID sets. ``UidRanges`` is a sorted tuple of inclusive ``(first, last)`` ranges of UIDs,
with ``*`` already resolved by the caller; methods taking one ignore UIDs that do not exist.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)

# RFC 6154 attributes of the folders every account gets, with their default names.
DEFAULT_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
HIERARCHY_SEPARATOR = "/"

UidRanges: TypeAlias = tuple[tuple[int, int], ...]
FlagMode = Literal["set", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Folder:
    """One folder of the account. ``name`` is the full name with ``/`` between levels and
    ``INBOX`` for the inbox (always spelled that way)."""

    id: int  # the store's id: stable while the folder exists, never reused
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None  # e.g. "\\Sent"
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What IMAP STATUS (and SELECT) report about a folder."""

    messages: int
    recent: int
    unseen: int  # messages without \\Seen
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    size: int  # bytes of all its messages
    deleted: int  # messages with \\Deleted


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A message's metadata without its body."""

    uid: int
    modseq: int
    internaldate: float  # seconds since the epoch
    size: int  # bytes, exactly as stored (CRLF line ends)
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Changes:
    """What happened in a folder after a given modseq."""

    highestmodseq: int
    uidnext: int
    changed: list[MessageInfo]  # new or with changed flags, ascending UID
    vanished: list[int]  # UIDs expunged, ascending


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UIDPLUS: the destination's UIDVALIDITY and the (source UID, new UID) pairs."""

    uidvalidity: int
    pairs: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Quota:
    """Storage quota of the account in bytes; ``limit`` 0 means none."""

    used: int
    limit: int


class MailboxError(Exception):
    """A request the mailbox service refuses; the message is fit to show to a client."""


class FolderNotFound(MailboxError):
    pass


class FolderExists(MailboxError):
    pass


class OverQuota(MailboxError):
    pass


class Mailboxes(ABC):
    """An account's folders and messages. One instance per logged-in session.

    Folder names given here are full names with ``/`` separators, already decoded from
    IMAP's modified UTF-7; ``inbox`` in any case means ``INBOX``.
    """

    address: str

    # -- folders ---------------------------------------------------------------------

    @abstractmethod
    async def folders(self) -> list[Folder]:
        """Every folder, INBOX first, then by name."""

    @abstractmethod
    async def folder(self, name: str) -> Folder:
        """Raises FolderNotFound."""

    @abstractmethod
    async def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        """Creates missing parents too (``a/b/c`` creates ``a`` and ``a/b``).
        Raises FolderExists, MailboxError (bad name, unknown special use)."""

    @abstractmethod
    async def delete_folder(self, name: str) -> None:
        """Deletes it and its messages. INBOX cannot be deleted; a folder with children
        cannot either (like Dovecot: NO with a reason). Raises FolderNotFound, MailboxError."""

    @abstractmethod
    async def rename_folder(self, old: str, new: str) -> None:
        """Renames it and its children. Renaming INBOX moves its messages into a new folder
        and leaves an empty INBOX (RFC 3501). Raises FolderNotFound, FolderExists."""

    @abstractmethod
    async def subscribe(self, name: str, subscribed: bool) -> None: ...

    @abstractmethod
    async def status(self, name: str) -> FolderStatus: ...

    # -- reading ---------------------------------------------------------------------

    @abstractmethod
    async def uids(self, folder: Folder) -> Sequence[int]:
        """Every UID in the folder, ascending (an ``array('I')``: 4 bytes per message)."""

    @abstractmethod
    async def messages(self, folder: Folder, uids: UidRanges) -> list[MessageInfo]:
        """Metadata of the messages in ``uids``, ascending UID."""

    @abstractmethod
    def scan(
        self, folder: Folder, uids: UidRanges | None = None, *, bodies: bool = False,
        batch: int = 500,
    ) -> AsyncIterator[list[tuple[MessageInfo, bytes | None]]]:
        """The folder's messages (or those in ``uids``) in batches of ``batch``, ascending
        UID, with their bodies when ``bodies``; memory stays bounded by one batch."""

    @abstractmethod
    async def body(self, folder: Folder, uid: int) -> bytes | None:
        """The message as stored, or None when it was expunged."""

    @abstractmethod
    async def bodies(self, folder: Folder, uids: Sequence[int]) -> dict[int, bytes]:
        """Several bodies in one query (missing UIDs are left out)."""

    @abstractmethod
    async def changes_since(self, folder: Folder, modseq: int) -> Changes:
        """New or changed messages and vanished UIDs with a modseq above ``modseq``."""

    @abstractmethod
    async def first_unseen_uid(self, folder: Folder) -> int | None: ...

    @abstractmethod
    async def keywords(self, folder: Folder) -> list[str]:
        """The keywords (flags without a backslash) on the folder's messages, each once
        (compared case-insensitively, spelled as the lowest UID has it), for SELECT's FLAGS."""

    @abstractmethod
    async def claim_recent(self, folder: Folder) -> int:
        """For a read-write SELECT: the lowest UID that is \\Recent to this session.
        Messages from that UID on are recent here and no longer to later sessions."""

    @abstractmethod
    async def highestmodseq(self, folder: Folder) -> tuple[int, int]:
        """(highestmodseq, uidnext) as stored now: the cheap check that something changed."""

    # -- writing ---------------------------------------------------------------------

    @abstractmethod
    async def append(
        self,
        name: str,
        data: bytes,
        flags: Sequence[str] = (),
        internaldate: float | None = None,
    ) -> tuple[int, int]:
        """Store a message; returns (uidvalidity, uid). Raises FolderNotFound, OverQuota."""

    @abstractmethod
    async def store_flags(
        self,
        folder: Folder,
        uids: UidRanges,
        mode: FlagMode,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]:
        """Change flags. Returns (messages whose flags changed, with their new modseq;
        UIDs not changed because their modseq was above ``unchanged_since``)."""

    @abstractmethod
    async def expunge(self, folder: Folder, uids: UidRanges | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (only those within ``uids`` when given,
        for UID EXPUNGE); returns their UIDs ascending. Frees their quota."""

    @abstractmethod
    async def remove(self, folder: Folder, uids: UidRanges) -> list[int]:
        """Expunge the messages in ``uids`` whatever their flags, in one transaction (POP3's
        UPDATE state); returns their UIDs ascending. Frees their quota."""

    @abstractmethod
    async def copy(self, folder: Folder, uids: UidRanges, target: str) -> CopyResult:
        """Copy with flags and internal date. Raises FolderNotFound, OverQuota."""

    @abstractmethod
    async def move(self, folder: Folder, uids: UidRanges, target: str) -> CopyResult:
        """Copy, then expunge the originals in the same transaction (RFC 6851)."""

    @abstractmethod
    async def quota(self) -> Quota: ...


def ranges_of(uids: Sequence[int]) -> UidRanges:
    """Sorted UIDs (duplicates allowed) → the fewest inclusive ranges."""
    out: list[tuple[int, int]] = []
    for uid in uids:
        if out and uid <= out[-1][1] + 1:
            if uid > out[-1][1]:
                out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return tuple(out)
