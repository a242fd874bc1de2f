"""The tokens of the IMAP command grammar (RFC 3501 §9) and a cursor that reads them.

``Cursor`` walks one complete command (literals inline, the final line end removed) and
raises ``Syntax`` with a short text fit for a BAD response, or ``Refuse`` for a NO. The
command grammar (``grammar``, ``grammar_fetch``, ``grammar_search``) is built on it.

Leniencies, like Dovecot: quoted strings may carry 8-bit bytes (UTF-8 from clients that do
not know better); a date-time's day may be one digit without the leading space.
"""

from __future__ import annotations

import datetime
import re
from typing import NoReturn

from hayate.imap import utf7
from hayate.imap.commands import MAX_MODSEQ, MAX_NUMBER, SequenceSet

ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
LIST_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')
TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
FLAG = re.compile(rb'\\?[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
QUOTED_LOOSE = re.compile(rb'"(?:[^"\\\r\n\x00]|\\[^\r\n\x00])*"')
QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
LITERAL = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\r?\n")
NUMBER = re.compile(rb"\d+")
SEQSET = re.compile(rb"[0-9*:,]+")
ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")
SECTION_TEXT = re.compile(rb"[A-Za-z.]+")
PARTIAL = re.compile(rb"<(\d{1,10})(?:\.(\d{1,10}))?>")
BASE64 = re.compile(rb"[A-Za-z0-9+/]+=*|=")
DATE = re.compile(rb'("?)(\d{1,2})-([A-Za-z]{3})-(\d{4})("?)')
DATE_TIME = re.compile(
    rb'"([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT",
         b"NOV", b"DEC"]
    )
}
SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
}


class Syntax(Exception):
    """A grammar error; the text goes into the BAD response."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class Refuse(Exception):
    """A well-formed command the parser must refuse with NO (unknown charset)."""

    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def decode_mailbox(raw: bytes) -> str:
    if raw.upper() == b"INBOX":
        return "INBOX"
    try:
        name = utf7.decode(raw)
    except ValueError as exc:
        raise Syntax(f"invalid mailbox name: {exc}") from None
    if name[:6].upper() == "INBOX/":
        name = "INBOX" + name[5:]
    return name


def utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Syntax(f"{what} is not valid UTF-8") from None


class Cursor:
    """A position in one command's bytes and the primitives of the grammar."""

    __slots__ = ("charset", "data", "depth", "pos", "tag")

    def __init__(self, data: bytes) -> None:
        end = len(data)
        if end and data[end - 1] == 0x0A:
            end -= 1
            if end and data[end - 1] == 0x0D:
                end -= 1
        self.data = data[:end]
        self.pos = 0
        self.tag: str | None = None
        self.depth = 0
        self.charset: str | None = None

    # -- primitives ----------------------------------------------------------------------

    def fail(self, text: str) -> NoReturn:
        raise Syntax(text)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def sp(self, what: str = "argument") -> None:
        if self.pos >= len(self.data) or self.data[self.pos] == 0x29:
            self.fail(f"missing {what}")
        if self.data[self.pos] != 0x20:
            self.fail(f"expected a space before the {what}")
        self.pos += 1
        if self.pos >= len(self.data):
            self.fail(f"missing {what}")

    def char(self, byte: int, text: str) -> None:
        if self.peek() != byte:
            self.fail(text)
        self.pos += 1

    def end(self) -> None:
        if self.pos < len(self.data):
            if self.data[self.pos] == 0x29:
                self.fail("unbalanced parentheses")
            self.fail("unexpected extra arguments")

    def match(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        found = pattern.match(self.data, self.pos)
        if found is not None:
            self.pos = found.end()
        return found

    def atom(self, what: str = "atom") -> bytes:
        found = self.match(ATOM)
        if found is None:
            self.fail(f"expected {what}")
        return found.group()

    def keyword(self, what: str) -> str:
        return self.atom(what).decode("ascii").upper()

    def quoted(self) -> bytes:
        found = self.match(QUOTED)
        if found is None:
            if QUOTED_LOOSE.match(self.data, self.pos):
                self.fail("invalid escape in quoted string")
            self.fail("unterminated quoted string")
        raw = found.group(1)
        if b"\\" not in raw:
            return raw
        return QUOTED_ESCAPE.sub(rb"\1", raw)

    def literal(self, allow8: bool = False) -> bytes:
        found = LITERAL.match(self.data, self.pos)
        if found is None:
            self.fail("invalid literal")
        if found.group(1) and not allow8:
            self.fail("literal8 not allowed here")
        size = int(found.group(2))
        start = found.end()
        if start + size > len(self.data):
            self.fail("literal shorter than announced")
        self.pos = start + size
        return self.data[start : start + size]

    def string(self, what: str = "string") -> bytes:
        byte = self.peek()
        if byte == 0x22:
            return self.quoted()
        if byte == 0x7B:
            return self.literal()
        self.fail(f"expected {what}")

    def astring(self, what: str = "argument") -> bytes:
        byte = self.peek()
        if byte == 0x22:
            return self.quoted()
        if byte == 0x7B:
            return self.literal()
        found = self.match(ASTRING_ATOM)
        if found is None:
            if byte == -1:
                self.fail(f"missing {what}")
            self.fail(f"invalid {what}")
        return found.group()

    def nstring(self) -> bytes | None:
        if self.data[self.pos : self.pos + 3].upper() == b"NIL" and (
            self.pos + 3 == len(self.data) or self.data[self.pos + 3] in b" )"
        ):
            self.pos += 3
            return None
        return self.string()

    def number(self, what: str = "number", limit: int = MAX_NUMBER) -> int:
        found = self.match(NUMBER)
        if found is None:
            self.fail(f"expected {what}")
        digits = found.group()
        if len(digits) > 20 or int(digits) > limit:
            self.fail(f"{what} too large")
        return int(digits)

    def nz_number(self, what: str = "number") -> int:
        number = self.number(what)
        if number == 0:
            self.fail(f"{what} must not be zero")
        return number

    def modseq(self, what: str = "mod-sequence") -> int:
        return self.number(what, MAX_MODSEQ)

    def seqset(self) -> SequenceSet:
        found = self.match(SEQSET)
        if found is None:
            if self.peek() == 0x24:
                self.fail("SEARCHRES ($) is not supported")
            self.fail("expected a sequence set")
        try:
            return SequenceSet.parse(found.group())
        except ValueError:
            self.fail("invalid sequence set")

    def mailbox(self) -> str:
        return decode_mailbox(self.astring("mailbox name"))

    def list_mailbox(self) -> str:
        byte = self.peek()
        if byte in (0x22, 0x7B):
            raw = self.string()
        else:
            found = self.match(LIST_ATOM)
            if found is None:
                self.fail("missing mailbox pattern" if byte == -1 else "invalid mailbox pattern")
            raw = found.group()
        return decode_mailbox(raw)

    def flag(self) -> str:
        found = self.match(FLAG)
        if found is None:
            self.fail("invalid flag")
        raw = found.group().decode("ascii")
        if raw[0] != "\\":
            return raw
        canonical = SYSTEM_FLAGS.get(raw.upper())
        if canonical is None:
            if raw.upper() == "\\RECENT":
                self.fail("\\Recent cannot be set")
            self.fail(f"invalid system flag {raw}")
        return canonical

    def flag_list(self) -> tuple[str, ...]:
        self.char(0x28, "expected a flag list")
        flags: list[str] = []
        while self.peek() != 0x29:
            if flags:
                self.char(0x20, "expected a space between flags")
            flags.append(self.flag())
        self.pos += 1
        return tuple(flags)

    def paren_atoms(self, what: str) -> list[str]:
        """``(A B C)`` of atoms, upper-cased; ``()`` is allowed."""
        self.char(0x28, f"expected ( before {what}")
        out: list[str] = []
        while self.peek() != 0x29:
            if out:
                self.char(0x20, f"expected a space between {what}")
            out.append(self.keyword(what))
        self.pos += 1
        return out

    def date_time(self) -> datetime.datetime:
        found = self.match(DATE_TIME)
        if found is None:
            self.fail("invalid date-time")
        day, month, year, hour, minute, second, sign, zh, zm = found.groups()
        month_number = MONTHS.get(month.upper())
        if month_number is None:
            self.fail("invalid month in date-time")
        offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
        if offset >= datetime.timedelta(hours=24) or int(zm) > 59:
            self.fail("invalid zone in date-time")
        try:
            return datetime.datetime(
                int(year), month_number, int(day.strip() or b"0"), int(hour), int(minute),
                int(second), tzinfo=datetime.timezone(-offset if sign == b"-" else offset),
            )
        except ValueError:
            self.fail("invalid date-time")

    def date(self) -> datetime.date:
        found = self.match(DATE)
        if found is None or found.group(1) != found.group(5):
            self.fail("invalid date")
        month = MONTHS.get(found.group(3).upper())
        if month is None:
            self.fail("invalid month in date")
        try:
            return datetime.date(int(found.group(4)), month, int(found.group(2)))
        except ValueError:
            self.fail("invalid date")

