"""The SEARCH criteria (RFC 3501 §6.4.4, RFC 5032 OLDER/YOUNGER, RFC 7162 MODSEQ) and
CHARSET handling: strings are decoded with the given charset (any text codec Python knows;
UTF-8 when none is given or US-ASCII is, like Dovecot); bytes invalid in it are a BAD; an
unknown charset is refused with ``BADCHARSET``."""

from __future__ import annotations

import codecs

from hayate.imap.commands import (
    SEARCH_DATE_KEYS,
    SEARCH_FLAG_KEYS,
    SEARCH_STRING_KEYS,
    SearchKey,
)
from hayate.imap.tokens import ATOM, Cursor, Refuse

MAX_DEPTH = 64  # nested parentheses, NOT and OR
BADCHARSET = "BADCHARSET (UTF-8 US-ASCII)"
# US-ASCII is read as its superset UTF-8 (Dovecot does the same).
_UTF8_ALIASES = frozenset({"UTF-8", "UTF8", "US-ASCII", "ASCII"})
_KEYS_WITH_ARGUMENTS = SEARCH_STRING_KEYS | SEARCH_DATE_KEYS | {
    "NOT", "OR", "UID", "HEADER", "KEYWORD", "UNKEYWORD", "LARGER", "SMALLER", "OLDER",
    "YOUNGER", "MODSEQ",
}


class SearchGrammar(Cursor):
    """Reads search criteria."""

    __slots__ = ()

    def atom_or_none(self) -> str | None:
        found = ATOM.match(self.data, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group().upper().decode("ascii")

    def charset_name(self) -> str:
        raw = self.astring("charset")
        name = raw.decode("ascii", "replace").upper()
        try:
            info = codecs.lookup(name)
        except LookupError:
            info = None
        if info is None or not getattr(info, "_is_text_encoding", True):
            raise Refuse(f"unknown charset {name[:40]}", BADCHARSET)
        self.charset = name
        return name

    def search_criteria(self) -> SearchKey:
        keys = [self.search_key()]
        while not self.at_end():
            if self.peek() == 0x29:
                self.fail("unbalanced parentheses")
            self.sp("search key")
            keys.append(self.search_key())
        return keys[0] if len(keys) == 1 else SearchKey("AND", children=tuple(keys))

    def search_string(self) -> str:
        raw = self.astring("search string")
        charset = self.charset or "UTF-8"
        codec = "utf-8" if charset in _UTF8_ALIASES else charset
        try:
            return raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            self.fail(f"search string is not valid {codec.upper()}")

    def search_key(self) -> SearchKey:
        byte = self.peek()
        if byte == 0x28:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("search nested too deeply")
            self.pos += 1
            keys = [self.search_key()]
            while self.peek() != 0x29:
                self.char(0x20, "expected ) to close the search list")
                keys.append(self.search_key())
            self.pos += 1
            self.depth -= 1
            return keys[0] if len(keys) == 1 else SearchKey("AND", children=tuple(keys))
        if 0x30 <= byte <= 0x39 or byte == 0x2A or byte == 0x24:
            return SearchKey("SEQ", self.seqset())
        if byte == -1:
            self.fail("missing search key")
        name = self.keyword("search key")
        if name in SEARCH_FLAG_KEYS:
            return SearchKey(name)
        if name not in _KEYS_WITH_ARGUMENTS:
            self.fail(f"unknown search key {name[:40]}")
        self.sp(f"argument of {name}")
        if name in SEARCH_STRING_KEYS:
            return SearchKey(name, self.search_string())
        if name in SEARCH_DATE_KEYS:
            return SearchKey(name, self.date())
        if name == "NOT":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("search nested too deeply")
            child = self.search_key()
            self.depth -= 1
            return SearchKey("NOT", children=(child,))
        if name == "OR":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("search nested too deeply")
            left = self.search_key()
            self.sp("second argument of OR")
            right = self.search_key()
            self.depth -= 1
            return SearchKey("OR", children=(left, right))
        if name == "UID":
            return SearchKey("UID", self.seqset())
        if name == "HEADER":
            # Any name is accepted (like Dovecot); one no header has matches nothing.
            field_name = self.search_string()
            self.sp("header search string")
            return SearchKey("HEADER", (field_name, self.search_string()))
        if name in ("KEYWORD", "UNKEYWORD"):
            found = self.match(ATOM)
            if found is None:
                self.fail("invalid keyword")
            return SearchKey(name, found.group().decode("ascii"))
        if name in ("LARGER", "SMALLER"):
            return SearchKey(name, self.number("size"))
        if name in ("OLDER", "YOUNGER"):
            return SearchKey(name, self.nz_number("interval"))
        if name == "MODSEQ":
            if self.peek() == 0x22:
                entry = self.quoted()
                if not entry.lower().startswith(b"/flags/"):
                    self.fail("invalid MODSEQ entry name")
                self.sp("entry type")
                if self.keyword("entry type") not in ("PRIV", "SHARED", "ALL"):
                    self.fail("invalid MODSEQ entry type")
                self.sp("mod-sequence")
            return SearchKey("MODSEQ", self.modseq())
        self.fail(f"unknown search key {name[:40]}")

