"""SEARCH evaluation (RFC 3501 §6.4.4, RFC 5032 OLDER/YOUNGER, RFC 7162 MODSEQ) over the
mailbox service, and the SEARCH / ESEARCH (RFC 4731) response lines.

Strategy:
- The key is compiled once into nested closures; AND evaluates metadata tests before the
  ones that need the message, so a message failing ``UNSEEN`` is never parsed.
- Only the session's view is searched: the messages of ``uids`` (its sequence number → UID
  list). ``UID`` and sequence-set keys at the top level narrow the UID ranges asked of the
  store; messages that arrived after the view was taken are skipped.
- Keys that need no message text run on ``scan(bodies=False)``; the others on
  ``scan(bodies=True)`` in batches, so memory stays at one batch whatever the folder size.
  MIME is parsed only when a text key is reached, and only as far as it needs.

Conventions: dates (BEFORE, ON, SINCE) compare the internal date's UTC calendar day, the
same day INTERNALDATE shows; SENT* compare the day written in the Date field (a message
without a readable Date matches no SENT* key). ``is_recent`` tells whether a UID is \\Recent
in this session (RECENT, OLD and NEW ask it; a session's recent UIDs need not be one
range). Keywords match case-insensitively.
"""

from __future__ import annotations

import datetime
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_tz

from hayate.imap import response
from hayate.imap.commands import (
    SEARCH_DATE_KEYS,
    SEARCH_STRING_KEYS,
    SearchKey,
    SequenceSet,
)
from hayate.mailbox import mime
from hayate.mailbox.model import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    Folder,
    Mailboxes,
    MessageInfo,
    UidRanges,
)

BODY_BATCH = 200
METADATA_BATCH = 5000
_TEXT_KEYS = SEARCH_STRING_KEYS | {"HEADER", "SENTBEFORE", "SENTON", "SENTSINCE"}
_FLAG_KEYS = {
    "ANSWERED": (ANSWERED, True), "DELETED": (DELETED, True), "DRAFT": (DRAFT, True),
    "FLAGGED": (FLAGGED, True), "SEEN": (SEEN, True), "UNANSWERED": (ANSWERED, False),
    "UNDELETED": (DELETED, False), "UNDRAFT": (DRAFT, False), "UNFLAGGED": (FLAGGED, False),
    "UNSEEN": (SEEN, False),
}
_HEADER_OF = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}


class Candidate:
    """One message under test: its sequence number, metadata, bytes and (lazily) MIME."""

    __slots__ = ("data", "info", "parsed", "seq")

    def __init__(self, seq: int, info: MessageInfo, data: bytes | None) -> None:
        self.seq = seq
        self.info = info
        self.data = data
        self.parsed: mime.MimeMessage | None = None

    def mime(self) -> mime.MimeMessage:
        if self.parsed is None:
            self.parsed = mime.parse(self.data or b"")
        return self.parsed


Test = Callable[[Candidate], bool]
RecentTest = Callable[[int], bool]  # UID → whether it is \Recent in this session


@dataclass(frozen=True, slots=True)
class SearchResult:
    uids: list[int]  # ascending
    highest_modseq: int  # the largest modseq among the matches; 0 when none matched


def needs_bodies(key: SearchKey) -> bool:
    """Whether evaluating ``key`` needs message text."""
    return key.name in _TEXT_KEYS or any(needs_bodies(child) for child in key.children)


def uses_modseq(key: SearchKey) -> bool:
    """Whether the key has a MODSEQ criterion (then the response carries ``(MODSEQ n)``)."""
    return key.name == "MODSEQ" or any(uses_modseq(child) for child in key.children)


async def search(
    mailboxes: Mailboxes, folder: Folder, uids: Sequence[int], key: SearchKey,
    is_recent: RecentTest, now: float,
) -> list[int]:
    """The UIDs (ascending) of the messages in ``uids`` that match ``key``."""
    return (await search_detailed(mailboxes, folder, uids, key, is_recent, now)).uids


async def search_detailed(
    mailboxes: Mailboxes, folder: Folder, uids: Sequence[int], key: SearchKey,
    is_recent: RecentTest, now: float,
) -> SearchResult:
    """Like ``search``, with the highest modseq of the matches (CONDSTORE)."""
    if not uids:
        return SearchResult([], 0)
    test = _Compiler(uids, is_recent, now).compile(key)
    ranges = _narrow(key, uids)
    if ranges is None:
        ranges = ((uids[0], uids[-1]),)
    if not ranges:
        return SearchResult([], 0)
    bodies = needs_bodies(key)
    matched: list[int] = []
    highest = 0
    batch = BODY_BATCH if bodies else METADATA_BATCH
    async for rows in mailboxes.scan(folder, ranges, bodies=bodies, batch=batch):
        for info, data in rows:
            index = bisect_left(uids, info.uid)
            if index == len(uids) or uids[index] != info.uid:
                continue  # not in this session's view (yet)
            if test(Candidate(index + 1, info, data)):
                matched.append(info.uid)
                highest = max(highest, info.modseq)
    return SearchResult(matched, highest)


# ----------------------------------------------------------------------------- narrowing


def _intersect(a: UidRanges, b: UidRanges) -> UidRanges:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low = max(a[i][0], b[j][0])
        high = min(a[i][1], b[j][1])
        if low <= high:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _seq_to_uid_ranges(ranges: list[tuple[int, int]], uids: Sequence[int]) -> UidRanges:
    out: list[tuple[int, int]] = []
    count = len(uids)
    for low, high in ranges:
        if low > count:
            continue
        out.append((uids[low - 1], uids[min(high, count) - 1]))
    return tuple(out)


def _narrow(key: SearchKey, uids: Sequence[int]) -> UidRanges | None:
    """UID ranges that hold every possible match, or None when the key does not say."""
    if key.name == "UID" and isinstance(key.value, SequenceSet):
        return _intersect(tuple(key.value.resolve(uids[-1])), ((uids[0], uids[-1]),))
    if key.name == "SEQ" and isinstance(key.value, SequenceSet):
        return _seq_to_uid_ranges(key.value.resolve(len(uids)), uids)
    if key.name == "AND":
        result: UidRanges | None = None
        for child in key.children:
            narrowed = _narrow(child, uids)
            if narrowed is not None:
                result = narrowed if result is None else _intersect(result, narrowed)
        return result
    return None


# ----------------------------------------------------------------------------- compiling


def _in_ranges(ranges: list[tuple[int, int]]) -> Callable[[int], bool]:
    starts = [low for low, _ in ranges]

    def contains(number: int) -> bool:
        index = bisect_right(starts, number) - 1
        return index >= 0 and number <= ranges[index][1]

    return contains


def _utc_day(timestamp: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).date()


def _sent_day(candidate: Candidate) -> datetime.date | None:
    values = candidate.mime().values("date")
    if not values:
        return None
    parsed = parsedate_tz(values[-1].decode("latin-1"))
    if parsed is None:
        return None
    try:
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


def _compare_day(name: str, day: datetime.date, wanted: datetime.date) -> bool:
    if name.endswith("BEFORE"):
        return day < wanted
    if name.endswith("ON"):
        return day == wanted
    return day >= wanted


class _Compiler:
    __slots__ = ("is_recent", "now", "uids")

    def __init__(self, uids: Sequence[int], is_recent: RecentTest, now: float) -> None:
        self.uids = uids
        self.is_recent = is_recent
        self.now = now

    def compile(self, key: SearchKey) -> Test:
        name, value = key.name, key.value
        if name == "AND":
            tests = [self.compile(c) for c in sorted(key.children, key=needs_bodies)]
            return lambda c: all(t(c) for t in tests)
        if name == "OR":
            left, right = (self.compile(c) for c in key.children)
            return lambda c: left(c) or right(c)
        if name == "NOT":
            inner = self.compile(key.children[0])
            return lambda c: not inner(c)
        if name == "ALL":
            return lambda c: True
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return lambda c: (flag in c.info.flags) is present
        is_recent = self.is_recent
        if name == "RECENT":
            return lambda c: is_recent(c.info.uid)
        if name == "OLD":
            return lambda c: not is_recent(c.info.uid)
        if name == "NEW":
            return lambda c: SEEN not in c.info.flags and is_recent(c.info.uid)
        if name in ("KEYWORD", "UNKEYWORD"):
            wanted = str(value).lower()
            present = name == "KEYWORD"
            return lambda c: any(f.lower() == wanted for f in c.info.flags) is present
        if name in ("LARGER", "SMALLER"):
            size = _int(value)
            if name == "LARGER":
                return lambda c: c.info.size > size
            return lambda c: c.info.size < size
        if name in ("OLDER", "YOUNGER"):
            limit = self.now - _int(value)
            if name == "OLDER":
                return lambda c: c.info.internaldate <= limit
            return lambda c: c.info.internaldate > limit
        if name == "MODSEQ":
            modseq = _int(value)
            return lambda c: c.info.modseq >= modseq
        if name == "UID" and isinstance(value, SequenceSet):
            contains = _in_ranges(value.resolve(self.uids[-1] if self.uids else 0))
            return lambda c: contains(c.info.uid)
        if name == "SEQ" and isinstance(value, SequenceSet):
            contains = _in_ranges(value.resolve(len(self.uids)))
            return lambda c: contains(c.seq)
        if name in SEARCH_DATE_KEYS and isinstance(value, datetime.date):
            return self._date(name, value)
        return self._text(name, value)

    def _date(self, name: str, wanted: datetime.date) -> Test:
        if name.startswith("SENT"):
            def sent(c: Candidate) -> bool:
                day = _sent_day(c)
                return day is not None and _compare_day(name, day, wanted)

            return sent
        return lambda c: _compare_day(name, _utc_day(c.info.internaldate), wanted)

    def _text(self, name: str, value: object) -> Test:
        if name in _HEADER_OF:
            field, needle = _HEADER_OF[name], str(value)
            return lambda c: mime.header_matches(c.mime(), field, needle)
        if name == "HEADER" and isinstance(value, tuple):
            field, needle = str(value[0]), str(value[1])
            return lambda c: mime.header_matches(c.mime(), field, needle)
        if name in ("BODY", "TEXT"):
            needle, headers = str(value), name == "TEXT"
            return lambda c: mime.text_matches(c.data or b"", c.mime(), needle, headers)
        raise ValueError(f"unknown search key {name}")


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"search key needs a number, not {value!r}")
    return value


# ----------------------------------------------------------------------------- responses


def search_response(numbers: Sequence[int], highest_modseq: int | None = None) -> bytes:
    """``* SEARCH 2 5 9 (MODSEQ 917162500)\\r\\n``; MODSEQ only when given and something
    matched (RFC 7162 §3.1.5)."""
    out = b"* SEARCH"
    if numbers:
        out += b" " + b" ".join(b"%d" % n for n in numbers)
        if highest_modseq is not None:
            out += b" (MODSEQ %d)" % highest_modseq
    return out + b"\r\n"


def esearch_response(
    tag: str, uid: bool, numbers: Sequence[int], returns: Sequence[str],
    highest_modseq: int | None = None,
) -> bytes:
    """RFC 4731 ``* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 3 ALL 2,5,9\\r\\n`` for sorted
    ``numbers``; MIN, MAX and ALL are left out when nothing matched, like Dovecot."""
    out = [b"* ESEARCH (TAG " + response.quoted(tag) + b")"]
    if uid:
        out.append(b"UID")
    if numbers:
        if "MIN" in returns:
            out.append(b"MIN %d" % numbers[0])
        if "MAX" in returns:
            out.append(b"MAX %d" % numbers[-1])
    if "COUNT" in returns:
        out.append(b"COUNT %d" % len(numbers))
    if numbers and "ALL" in returns:
        out.append(b"ALL " + response.sequence_set(numbers))
    if numbers and highest_modseq is not None:
        out.append(b"MODSEQ %d" % highest_modseq)
    return b" ".join(out) + b"\r\n"
