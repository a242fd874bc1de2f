"""The parsed IMAP commands: what ``parser.CommandReader`` returns and sessions execute.

Every command is a frozen dataclass with its ``tag``; ``name`` (where a class covers more
than one command) is the command in upper case. Values are already checked and decoded:

- mailbox names are decoded from modified UTF-7, ``INBOX`` in any case becomes ``INBOX``;
- sequence sets are ``SequenceSet`` with 0 standing for ``*``;
- flags keep their spelling, except system flags which are spelled canonically
  (``\\seen`` → ``\\Seen``);
- FETCH macros (ALL, FAST, FULL) are expanded; ``UID FETCH`` has the UID item added and
  ``CHANGEDSINCE`` the MODSEQ item (RFC 7162), each once;
- search strings are decoded from the command's CHARSET to ``str``.

The reader's other results live here too so that sessions need one import: ``Bad`` (answer
BAD), ``No`` (answer NO: a well-formed command the parser already knows must be refused,
today only an unknown SEARCH/SORT charset, with code ``BADCHARSET (UTF-8 US-ASCII)``) and
``NeedContinuation`` (send ``+ OK``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

MAX_NUMBER = 4_294_967_295  # number / nz-number (RFC 3501)
MAX_MODSEQ = 9_223_372_036_854_775_807  # mod-sequence-value (RFC 7162)
PARTIAL_TO_END = MAX_MODSEQ  # the length of a ``<n>`` partial (Dovecot: to the end)

# --------------------------------------------------------------------------- sequence sets


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """``1:3,5,7:*`` as inclusive ``(first, last)`` ranges in the order the client gave them;
    0 in either bound stands for ``*`` (the largest number in use)."""

    ranges: tuple[tuple[int, int], ...]

    @property
    def uses_star(self) -> bool:
        return any(first == 0 or last == 0 for first, last in self.ranges)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """``*`` replaced by ``largest``, bounds put in order (``5:2`` is ``2:5``, and
        ``9:*`` with largest 4 is ``4:9``), sorted and merged. With ``largest`` 0 (an empty
        mailbox) a range with ``*`` matches nothing."""
        resolved: list[tuple[int, int]] = []
        for first, last in self.ranges:
            if largest <= 0 and (first == 0 or last == 0):
                continue
            low = largest if first == 0 else first
            high = largest if last == 0 else last
            if low > high:
                low, high = high, low
            low = max(low, 1)
            if high >= low:
                resolved.append((low, high))
        resolved.sort()
        merged: list[tuple[int, int]] = []
        for low, high in resolved:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def exceeds(self, largest: int) -> bool:
        """Whether a number other than ``*`` is above ``largest`` (for message sequence
        numbers that is a BAD, RFC 3501 §9 seq-number)."""
        return any(bound > largest for pair in self.ranges for bound in pair)

    def contains(self, number: int, largest: int) -> bool:
        return any(low <= number <= high for low, high in self.resolve(largest))

    def numbers(self, largest: int) -> Iterator[int]:
        """Every number in the resolved set, ascending."""
        for low, high in self.resolve(largest):
            yield from range(low, high + 1)

    def __str__(self) -> str:
        def one(n: int) -> str:
            return "*" if n == 0 else str(n)

        return ",".join(
            one(first) if first == last else f"{one(first)}:{one(last)}"
            for first, last in self.ranges
        )

    @classmethod
    def parse(cls, text: str | bytes) -> SequenceSet:
        """``1:3,5,*`` → a SequenceSet; ``ValueError`` when it is not a valid sequence-set."""
        raw = text.decode("ascii") if isinstance(text, bytes) else text
        if not raw:
            raise ValueError("empty sequence set")
        ranges: list[tuple[int, int]] = []
        for part in raw.split(","):
            first, sep, last = part.partition(":")
            low = _seq_number(first)
            ranges.append((low, _seq_number(last) if sep else low))
        return cls(tuple(ranges))


def _seq_number(text: str) -> int:
    if text == "*":
        return 0
    if not text.isdigit() or not text.isascii() or text[0] == "0" or len(text) > 10:
        raise ValueError(f"invalid sequence number {text!r}")
    number = int(text)
    if number > MAX_NUMBER:
        raise ValueError(f"sequence number {text} too large")
    return number


# --------------------------------------------------------------------------- FETCH items


@dataclass(frozen=True, slots=True)
class Section:
    """The ``[...]`` of BODY[] / BINARY[]. ``part`` is empty for the whole message;
    ``text`` is HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME or None; ``fields`` the
    upper-cased header names of HEADER.FIELDS(.NOT)."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        spec = ".".join(str(n) for n in self.part)
        if self.text:
            spec = f"{spec}.{self.text}" if spec else self.text
            if self.fields:
                spec += " (" + " ".join(self.fields) + ")"
        return spec


FETCH_SIMPLE = frozenset(
    {
        "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY",
        "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ",
    }
)


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One FETCH data item. ``name`` is one of UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE
    BODYSTRUCTURE BODY (the non-extensible structure) BODY[] (any ``BODY[section]``, with
    ``section`` set) RFC822 RFC822.HEADER RFC822.TEXT MODSEQ BINARY BINARY.SIZE.
    ``peek`` is BODY.PEEK / BINARY.PEEK; ``partial`` is ``<offset.length>`` (``<offset>``,
    which Dovecot accepts, has length ``PARTIAL_TO_END``)."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None

    @property
    def sets_seen(self) -> bool:
        """Fetching it sets ``\\Seen`` (RFC 3501 §6.4.5)."""
        return (self.name in ("BODY[]", "BINARY") and not self.peek) or self.name in (
            "RFC822",
            "RFC822.TEXT",
        )

    def label(self) -> str:
        """The item's name in the response: ``BODY[1.HEADER]<0>``, ``BINARY.SIZE[2]``..."""
        if self.name == "BODY[]":
            base = f"BODY[{self.section or ''}]"
        elif self.name in ("BINARY", "BINARY.SIZE"):
            base = f"{self.name}[{self.section or ''}]"
        else:
            return self.name
        if self.partial is not None and self.name != "BINARY.SIZE":
            base += f"<{self.partial[0]}>"
        return base


ITEM_UID = FetchItem("UID")
ITEM_FLAGS = FetchItem("FLAGS")
ITEM_MODSEQ = FetchItem("MODSEQ")
FETCH_MACROS: dict[str, tuple[FetchItem, ...]] = {
    "FAST": (ITEM_FLAGS, FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE")),
    "ALL": (
        ITEM_FLAGS, FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"), FetchItem("ENVELOPE"),
    ),
    "FULL": (
        ITEM_FLAGS, FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"), FetchItem("ENVELOPE"),
        FetchItem("BODY"),
    ),
}

# --------------------------------------------------------------------------- SEARCH keys

SEARCH_FLAG_KEYS = frozenset(
    {
        "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
        "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN",
    }
)
SEARCH_STRING_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
SEARCH_DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One search criterion. ``name`` and ``value`` by kind:

    - AND (a parenthesized list, or the whole criteria): ``children``
    - OR (two children), NOT (one child)
    - SEQ: ``value`` is a SequenceSet of message sequence numbers; UID: a SequenceSet of UIDs
    - the flag keys (ALL ANSWERED ... UNSEEN, NEW, OLD, RECENT): no value
    - BCC BODY CC FROM SUBJECT TEXT TO: ``value`` is the decoded ``str``
    - HEADER: ``value`` is ``(field_name, str)``, field name as given
    - KEYWORD / UNKEYWORD: ``value`` is the keyword
    - BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE: ``value`` is a ``datetime.date``
    - LARGER / SMALLER: ``value`` is an int (bytes)
    - OLDER / YOUNGER (RFC 5032): ``value`` is an int (seconds)
    - MODSEQ (RFC 7162): ``value`` is the int mod-sequence (entry name and type ignored)
    """

    name: str
    value: object = None
    children: tuple[SearchKey, ...] = ()


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Simple:
    """A command without arguments: CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE EXPUNGE
    UNSELECT IDLE NAMESPACE."""

    tag: str
    name: str


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    user: str
    password: str
    name: str = "LOGIN"


@dataclass(frozen=True, slots=True)
class Authenticate:
    """AUTHENTICATE; ``initial`` is the SASL-IR initial response decoded from base64
    (``b""`` for ``=``), None when the client gave none."""

    tag: str
    mechanism: str
    initial: bytes | None = None
    name: str = "AUTHENTICATE"


@dataclass(frozen=True, slots=True)
class Qresync:
    """SELECT's ``(QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]))``."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT (``readonly`` False) or EXAMINE (``readonly`` True)."""

    tag: str
    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: Qresync | None = None

    @property
    def name(self) -> str:
        return "EXAMINE" if self.readonly else "SELECT"


@dataclass(frozen=True, slots=True)
class Create:
    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 CREATE (USE (\Drafts))
    name: str = "CREATE"


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: str
    name: str = "DELETE"


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    old: str
    new: str
    name: str = "RENAME"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE (``subscribe`` True) or UNSUBSCRIBE."""

    tag: str
    mailbox: str
    subscribe: bool = True

    @property
    def name(self) -> str:
        return "SUBSCRIBE" if self.subscribe else "UNSUBSCRIBE"


@dataclass(frozen=True, slots=True)
class List:
    """LIST (with RFC 5258 LIST-EXTENDED and RFC 5819 LIST-STATUS) or LSUB.

    ``reference`` and ``patterns`` are decoded from modified UTF-7 (wildcards kept).
    ``selection`` holds the upper-cased selection options (SUBSCRIBED REMOTE
    RECURSIVEMATCH SPECIAL-USE), ``returns`` the return options (SUBSCRIBED CHILDREN
    SPECIAL-USE STATUS); ``status_items`` the items of ``RETURN (STATUS (...))``.
    ``extended`` is True when the extended syntax was used (then the response carries
    CHILDINFO and friends as RFC 5258 asks)."""

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    lsub: bool = False
    extended: bool = False

    @property
    def name(self) -> str:
        return "LSUB" if self.lsub else "LIST"


STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE",
     "DELETED"}
)


@dataclass(frozen=True, slots=True)
class Status:
    tag: str
    mailbox: str
    items: tuple[str, ...]
    name: str = "STATUS"


@dataclass(frozen=True, slots=True)
class Append:
    tag: str
    mailbox: str
    flags: tuple[str, ...]
    date: datetime.datetime | None
    message: bytes
    name: str = "APPEND"


@dataclass(frozen=True, slots=True)
class Fetch:
    tag: str
    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False
    name: str = "FETCH"


StoreMode = Literal["set", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Store:
    tag: str
    uid: bool
    sequence: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None
    name: str = "STORE"


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY (``move`` False) or MOVE (RFC 6851), UID or not."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: str
    move: bool = False

    @property
    def name(self) -> str:
        return "MOVE" if self.move else "COPY"


@dataclass(frozen=True, slots=True)
class UidExpunge:
    tag: str
    sequence: SequenceSet
    name: str = "UID EXPUNGE"


SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT"})


@dataclass(frozen=True, slots=True)
class Search:
    """SEARCH; ``charset`` is the upper-cased CHARSET given (None when absent; the strings in
    ``key`` are decoded either way). ``returns`` is None for a plain SEARCH and the
    RFC 4731 ESEARCH options otherwise (``RETURN ()`` gives ``("ALL",)``)."""

    tag: str
    uid: bool
    charset: str | None
    key: SearchKey
    returns: tuple[str, ...] | None = None
    name: str = "SEARCH"


SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256): ``criteria`` is ``((key, reverse), ...)``."""

    tag: str
    uid: bool
    criteria: tuple[tuple[str, bool], ...]
    charset: str
    key: SearchKey
    name: str = "SORT"


@dataclass(frozen=True, slots=True)
class Enable:
    tag: str
    capabilities: tuple[str, ...]  # upper-cased
    name: str = "ENABLE"


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971 ID; ``params`` None for ``ID NIL``."""

    tag: str
    params: dict[str, str | None] | None = field(default=None, hash=False, compare=True)
    name: str = "ID"


@dataclass(frozen=True, slots=True)
class GetQuota:
    tag: str
    root: str
    name: str = "GETQUOTA"


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    tag: str
    mailbox: str
    name: str = "GETQUOTAROOT"


@dataclass(frozen=True, slots=True)
class SetQuota:
    tag: str
    root: str
    limits: tuple[tuple[str, int], ...]  # (resource upper-cased, limit)
    name: str = "SETQUOTA"


Command: TypeAlias = (
    Simple | Login | Authenticate | Select | Create | Delete | Rename | Subscribe | List
    | Status | Append | Fetch | Store | Copy | UidExpunge | Search | Sort | Enable | Id
    | GetQuota | GetQuotaRoot | SetQuota
)

SIMPLE_COMMANDS = frozenset(
    {"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "EXPUNGE", "UNSELECT",
     "IDLE", "NAMESPACE"}
)

# --------------------------------------------------------------------------- reader results


@dataclass(frozen=True, slots=True)
class Bad:
    """Answer ``<tag> BAD [code] text`` (``* BAD`` when ``tag`` is None: no tag could be
    read). ``code`` is e.g. ``TOOBIG`` for a literal over the limit."""

    tag: str | None
    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class No:
    """Answer ``<tag> NO [code] text``: the command is well formed but the parser already
    knows it must be refused (an unknown SEARCH/SORT charset: ``BADCHARSET (...)``)."""

    tag: str
    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """A synchronizing literal of ``size`` bytes was announced and accepted: write
    ``+ OK\\r\\n`` before the client sends it."""

    tag: str | None
    size: int


ReaderResult: TypeAlias = Command | Bad | No | NeedContinuation
