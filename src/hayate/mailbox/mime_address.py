"""RFC 5322 address lists as IMAP ENVELOPE addresses: ``(name adl mailbox host)``.

Lenient like Dovecot's parser, whose output is the reference:

- ``Name <local@host>``, ``local@host (Comment)`` (the comment after an addr-spec becomes
  the name), ``<@route,@route:local@host>`` (the route is the adl), quoted local parts
  (unquoted in the result), phrases joined by single spaces with their quotes removed and
  encoded-words left as they are.
- Groups: ``(NIL NIL "group" NIL)``, the members, then ``(NIL NIL NIL NIL)``; a group
  without its ``;`` is closed at the end of the field.
- An element without a mailbox or a domain gets ``MISSING_MAILBOX`` / ``MISSING_DOMAIN``;
  an empty element between commas is such an address too (but not an empty tail after the
  last comma). An empty field is no address at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hayate.mailbox.mime_fields import read_quoted

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

_SPECIALS = "<>@,;:"
_ATOM_END = frozenset('()<>@,;:"[] \t\r\n\\')

# token kinds
ATOM, QUOTED, COMMENT, LITERAL, SPECIAL = range(5)


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address; a group start has only ``mailbox`` (the group name), a group
    end has nothing."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    @property
    def is_group_marker(self) -> bool:
        return self.host is None


GROUP_END = Address(None, None, None, None)


def _comment(s: str, i: int) -> tuple[str, int]:
    depth = 0
    out: list[str] = []
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if ch == "(":
            depth += 1
            if depth > 1:
                out.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return "".join(out), i + 1
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out), i


def tokenize(s: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == '"':
            text, i = read_quoted(s, i)
            tokens.append((QUOTED, text))
        elif ch == "(":
            text, i = _comment(s, i)
            tokens.append((COMMENT, " ".join(text.split())))
        elif ch == "[":
            end = s.find("]", i)
            end = n if end < 0 else end + 1
            tokens.append((LITERAL, s[i:end]))
            i = end
        elif ch in _SPECIALS:
            tokens.append((SPECIAL, ch))
            i += 1
        elif ch in ")]\\":
            i += 1  # stray: ignored
        else:
            start = i
            while i < n and s[i] not in _ATOM_END:
                i += 1
            tokens.append((ATOM, s[start:i]))
    return tokens


_WHITESPACE = re.compile(r"[ \t\r\n]+")


def _phrase(tokens: list[tuple[int, str]]) -> str | None:
    """A display name: the words joined by one space, whitespace runs inside quoted words
    made one space too."""
    words = [text for kind, text in tokens if kind in (ATOM, QUOTED, LITERAL)]
    if not words:
        return None
    return _WHITESPACE.sub(" ", " ".join(words)).strip(" ")


def _addr_spec(tokens: list[tuple[int, str]]) -> tuple[str, str]:
    """(mailbox, host) of ``local@domain`` tokens, with the MISSING_ placeholders."""
    local: list[str] = []
    domain: list[str] = []
    target = local
    seen_at = False
    for kind, text in tokens:
        if kind == COMMENT:
            continue
        if kind == SPECIAL and text == "@" and not seen_at:
            seen_at = True
            target = domain
            continue
        target.append(text)
    mailbox = "".join(local) or MISSING_MAILBOX
    host = "".join(domain) if seen_at and domain else MISSING_DOMAIN
    return mailbox, host


class _Parser:
    def __init__(self, tokens: list[tuple[int, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def _scan(self, stops: str) -> int:
        """Index of the next SPECIAL token in ``stops`` (or the end), from ``self.i``."""
        j = self.i
        while j < len(self.tokens):
            kind, text = self.tokens[j]
            if kind == SPECIAL and text in stops:
                return j
            j += 1
        return j

    def _at(self, j: int, char: str) -> bool:
        return j < len(self.tokens) and self.tokens[j] == (SPECIAL, char)

    def mailbox(self) -> Address:
        """One mailbox from ``self.i``; leaves ``self.i`` at the ``,``/``;`` after it."""
        j = self._scan(",;<")
        if self._at(j, "<"):
            name = _phrase(self.tokens[self.i : j])
            self.i = j + 1
            close = self._scan(">")
            inner = self.tokens[self.i : close]
            adl = None
            if inner and inner[0] == (SPECIAL, "@"):
                colon = next(
                    (k for k, t in enumerate(inner) if t == (SPECIAL, ":")), len(inner)
                )
                adl = "".join(text for kind, text in inner[:colon] if kind != COMMENT)
                inner = inner[colon + 1 :]
            mailbox, host = _addr_spec(inner)
            self.i = close + 1 if close < len(self.tokens) else close
            self.i = self._scan(",;")
            return Address(name, adl, mailbox, host)
        spec = self.tokens[self.i : j]
        self.i = j
        mailbox, host = _addr_spec(spec)
        name = None
        started = False
        for kind, text in spec:
            if kind == COMMENT:
                if started:
                    name = text
            else:
                started = True
        return Address(name, None, mailbox, host)

    def parse(self) -> list[Address]:
        out: list[Address] = []
        tokens = self.tokens
        while self.i < len(tokens):
            j = self._scan(",:<;")
            if self._at(j, ":"):
                out.append(Address(None, None, _phrase(tokens[self.i : j]) or "", None))
                self.i = j + 1
                while self.i < len(tokens) and not self._at(self.i, ";"):
                    if self._at(self.i, ","):
                        self.i += 1
                        continue
                    out.append(self.mailbox())
                    if self._at(self.i, ","):
                        self.i += 1
                out.append(GROUP_END)
                self.i = self._scan(",")
            elif self._at(j, ";") and j == self.i:
                self.i += 1  # a stray ";"
                continue
            else:
                out.append(self.mailbox())
            if self._at(self.i, ","):
                self.i += 1
        return out


def parse_addresses(text: str) -> list[Address]:
    """The addresses of one field value (possibly empty)."""
    tokens = tokenize(text)
    if all(kind == COMMENT for kind, _ in tokens):
        return []
    return _Parser(tokens).parse()
