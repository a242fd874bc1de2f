"""Structured MIME header fields: Content-Type and Content-Disposition with their parameters
(RFC 2045 §5, RFC 2183, RFC 2231 continuations), and Content-Language lists.

Values are parsed from the raw header bytes decoded with ``surrogateescape``, so 8-bit bytes
survive unchanged and :func:`imap_text` can hand them back exactly as they were stored.
Parsing is lenient the way Dovecot's is: parameters are read until the first one that does
not parse, and RFC 2231 pieces are merged only when their indexes run 0, 1, 2… without a
gap (otherwise they are kept under their original names). One deliberate difference: a
Content-Type without a valid ``type/subtype`` means ``text/plain; charset=us-ascii``, as
RFC 2045 §5.2 recommends (Dovecot 2.3 reports ``"" ""`` or ``"text" ""`` there, which
clients cannot use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 2045 tspecials plus SP and CTLs end a token; 8-bit characters are let through.
_TOKEN = re.compile(r'[^()<>@,;:\\"/\[\]?=\x00-\x20]*')
_CFWS = re.compile(r"[ \t\r\n]*")


def decode_raw(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def imap_text(text: str) -> str | bytes:
    """A parsed string as an IMAP value: ``str`` when it is valid UTF-8 (or ASCII),
    otherwise the original bytes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def skip_cfws(s: str, i: int) -> int:
    """Skip whitespace and (nested) comments from ``s[i]``."""
    n = len(s)
    while i < n:
        ch = s[i]
        if ch in " \t\r\n":
            match = _CFWS.match(s, i)
            assert match is not None
            i = match.end()
        elif ch == "(":
            depth = 0
            while i < n:
                ch = s[i]
                if ch == "\\":
                    i += 2
                    continue
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            break
    return i


def read_token(s: str, i: int) -> tuple[str, int]:
    match = _TOKEN.match(s, i)
    assert match is not None  # the pattern matches the empty string
    return match.group(), match.end()


def read_quoted(s: str, i: int) -> tuple[str, int]:
    """``s[i]`` is ``"``: the unescaped content and the index after the closing quote
    (an unterminated string runs to the end)."""
    out: list[str] = []
    i += 1
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        if ch not in "\r\n":
            out.append(ch)
        i += 1
    return "".join(out), i


Params = list[tuple[str, str]]


def parse_params(s: str, i: int) -> Params:
    """``; key=value`` parameters from ``s[i]`` on, with RFC 2231 pieces merged."""
    plain: Params = []
    pieces: list[tuple[str, int, bool, str]] = []  # (name, index, extended, value)
    n = len(s)
    while True:
        i = skip_cfws(s, i)
        if i >= n or s[i] != ";":
            break
        i = skip_cfws(s, i + 1)
        key, i = read_token(s, i)
        if not key:
            break
        i = skip_cfws(s, i)
        if i >= n or s[i] != "=":
            break
        i = skip_cfws(s, i + 1)
        if i < n and s[i] == '"':
            value, i = read_quoted(s, i)
        else:
            value, i = read_token(s, i)
            if not value:
                break
        piece = _rfc2231_piece(key)
        if piece is None:
            plain.append((key, value))
        else:
            pieces.append((piece[0], piece[1], piece[2], value))
    if pieces:
        plain.extend(_merge_pieces(pieces))
    return plain


def _rfc2231_piece(key: str) -> tuple[str, int, bool] | None:
    """``name*``, ``name*3`` or ``name*3*`` → (name, index, extended); None otherwise."""
    star = key.find("*")
    if star <= 0:
        return None
    rest = key[star + 1 :]
    digits = len(rest) - len(rest.lstrip("0123456789"))
    index = int(rest[:digits]) if digits else 0
    tail = rest[digits:]
    if tail not in ("", "*"):
        return None
    if not digits and tail == "":
        return key[:star], 0, True  # "name*"
    return key[:star], index, tail == "*"


def _merge_pieces(pieces: list[tuple[str, int, bool, str]]) -> Params:
    pieces.sort(key=lambda p: (p[0].lower(), p[1]))
    out: Params = []
    i = 0
    while i < len(pieces):
        j = i
        name = pieces[i][0].lower()
        while j < len(pieces) and pieces[j][0].lower() == name:
            j += 1
        group = pieces[i:j]
        if all(p[1] == k for k, p in enumerate(group)):
            extended = any(p[2] for p in group)
            out.append((group[0][0] + ("*" if extended else ""), "".join(p[3] for p in group)))
        else:
            for p_name, index, extended, value in group:
                out.append((f"{p_name}*{index}{'*' if extended else ''}", value))
        i = j
    return out


def param(params: Params, name: str) -> str | None:
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            return value
    return None


@dataclass(slots=True)
class ContentType:
    type: str  # as written (case kept), e.g. "text"
    subtype: str
    params: Params

    @property
    def type_lower(self) -> str:
        return self.type.lower()

    @property
    def subtype_lower(self) -> str:
        return self.subtype.lower()

    @property
    def is_multipart(self) -> bool:
        return self.type_lower == "multipart"

    @property
    def is_message(self) -> bool:
        return self.type_lower == "message" and self.subtype_lower == "rfc822"

    @property
    def is_text(self) -> bool:
        return self.type_lower == "text"

    @property
    def boundary(self) -> bytes | None:
        value = param(self.params, "boundary")
        if not value:
            return None
        return value.encode("utf-8", "surrogateescape")

    @property
    def charset(self) -> str | None:
        return param(self.params, "charset")


def _default_type(digest: bool) -> ContentType:
    if digest:
        return ContentType("message", "rfc822", [])
    return ContentType("text", "plain", [("charset", "us-ascii")])


def parse_content_type(raw: bytes | None, digest: bool = False) -> ContentType:
    """The Content-Type of a part (``digest``: the part is inside multipart/digest)."""
    if raw is None:
        return _default_type(digest)
    s = decode_raw(raw)
    i = skip_cfws(s, 0)
    main, i = read_token(s, i)
    i = skip_cfws(s, i)
    if not main or i >= len(s) or s[i] != "/":
        return _default_type(False)
    i = skip_cfws(s, i + 1)
    sub, i = read_token(s, i)
    if not sub:
        return _default_type(False)
    params = parse_params(s, i)
    ctype = ContentType(main, sub, params)
    if ctype.is_text and param(params, "charset") is None:
        params.append(("charset", "us-ascii"))
    return ctype


def parse_disposition(raw: bytes | None) -> tuple[str, Params] | None:
    """Content-Disposition as (type as written, parameters); None when absent or empty."""
    if raw is None:
        return None
    s = decode_raw(raw)
    kind, i = read_token(s, skip_cfws(s, 0))
    if not kind:
        return None
    return kind, parse_params(s, i)


def parse_language(raw: bytes | None) -> list[str] | None:
    """Content-Language tags (RFC 3282); None when absent or empty."""
    if raw is None:
        return None
    s = decode_raw(raw)
    tags: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        i = skip_cfws(s, i)
        tag, i = read_token(s, i)
        if tag:
            tags.append(tag)
        i = skip_cfws(s, i)
        if i < n and s[i] != ",":
            i += 1  # a stray character: skip it
        elif i < n:
            i += 1
    return tags or None
