"""Encoding IMAP values for server responses (RFC 3501 §4, §9 formal syntax).

A *value tree* is what FETCH items, ENVELOPE, BODYSTRUCTURE, LIST, STATUS and friends are
built from:

- ``None``            NIL
- ``int``             a number
- ``Atom``            a ``str`` subclass sent bare (flags, keywords, ``\\Noselect``, item names)
- ``str``             a string: quoted when short and plain ASCII, otherwise a literal of its
                      UTF-8 bytes
- ``bytes``           a string: quoted when short and safe, otherwise a literal
- ``list``/``tuple``  a parenthesized list, elements separated by one space; a list
                      subclass with a ``packed`` attribute n writes its first n elements
                      back to back (``((a)(b) "mixed")``, see ``hayate.mailbox.mime``)

``encode`` turns a tree into bytes; the other helpers cover the places where the grammar
wants one specific form (astring for mailbox names, flag lists, tagged status lines).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeAlias

from hayate.imap import utf7


class Atom(str):
    """A string sent exactly as it is, without quotes (flags, keywords, keywords of the
    protocol). The caller guarantees it is a valid atom (or flag, like ``\\Seen``)."""

    __slots__ = ()


Value: TypeAlias = "int | str | bytes | Atom | list[Value] | tuple[Value, ...] | None"

NIL = b"NIL"
QUOTED_MAX = 1024  # longer strings go as literals, like Dovecot does

# Bytes that may not appear inside a quoted string: NUL, CR, LF and 8-bit.
_UNQUOTABLE = frozenset(range(0x80, 0x100)) | {0, 0x0A, 0x0D}
# atom-specials (RFC 3501): ( ) { SP CTL % * " \ ]  — astring allows ].
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x00, 0x20)) | {0x7F}
_ASTRING_SPECIALS = _ATOM_SPECIALS - {ord("]")}
_QUOTE_TABLE = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _quotable(data: bytes) -> bool:
    if len(data) > QUOTED_MAX:
        return False
    return not any(b in _UNQUOTABLE for b in data)


def literal(data: bytes) -> bytes:
    """``{n}\\r\\n`` followed by the bytes."""
    return b"{%d}\r\n" % len(data) + data


def quoted(text: str | bytes) -> bytes:
    """A quoted string with ``\\`` and ``"`` escaped. Text that a quoted string cannot
    carry (CR, LF, NUL, 8-bit, or longer than ``QUOTED_MAX``) is sent as a literal."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not _quotable(data):
        return literal(data)
    if b"\\" in data or b'"' in data:
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + data + b'"'


def string(text: str | bytes) -> bytes:
    """An IMAP ``string`` (quoted or literal, whichever the content allows)."""
    return quoted(text)


def nstring(text: str | bytes | None) -> bytes:
    """An IMAP ``nstring``: NIL for None, otherwise a string."""
    return NIL if text is None else quoted(text)


def astring(text: str) -> bytes:
    """An IMAP ``astring``: bare when every character is an astring-char (and it does not
    read as NIL), otherwise quoted or a literal."""
    data = text.encode("utf-8")
    if (
        data
        and not any(b in _ASTRING_SPECIALS or b >= 0x80 for b in data)
        and data.upper() != NIL
    ):
        return data
    return quoted(data)


def mailbox_name(name: str) -> bytes:
    """A mailbox name as an astring of its modified UTF-7 form."""
    return astring(utf7.encode(name))


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen \\Flagged $Label)``: the flags as atoms, in the order given."""
    return b"(" + " ".join(flags).encode("ascii", "replace") + b")"


def sorted_flag_list(flags: Iterable[str]) -> bytes:
    """A flag list in a stable order: system flags first, then keywords, each sorted."""
    return flag_list(sorted(flags, key=lambda f: (not f.startswith("\\"), f)))


def encode(value: Value) -> bytes:
    """The wire form of a value tree (see the module docstring)."""
    out: list[bytes] = []
    _encode_into(value, out)
    return b"".join(out)


def _encode_into(value: Value, out: list[bytes]) -> None:
    kind = type(value)
    if value is None:
        out.append(NIL)
    elif kind is Atom:
        out.append(value.encode("ascii", "replace"))  # type: ignore[union-attr]
    elif kind is str or kind is bytes:
        out.append(quoted(value))  # type: ignore[arg-type]
    elif kind is list or kind is tuple:
        out.append(b"(")
        first = True
        for item in value:  # type: ignore[union-attr]
            if not first:
                out.append(b" ")
            first = False
            _encode_into(item, out)
        out.append(b")")
    elif kind is int:
        out.append(b"%d" % value)  # type: ignore[str-format]
    elif isinstance(value, Atom):
        out.append(str(value).encode("ascii", "replace"))
    elif isinstance(value, (str, bytes)):
        out.append(quoted(value))
    elif isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    elif isinstance(value, int):
        out.append(b"%d" % value)
    elif isinstance(value, (list, tuple)):
        # A list whose first ``packed`` items go back to back without spaces (a multipart's
        # bodies, an envelope's addresses: ``hayate.mailbox.mime.PackedList``).
        packed = getattr(value, "packed", 0)
        out.append(b"(")
        for index, item in enumerate(value):
            if index and index >= packed:
                out.append(b" ")
            _encode_into(item, out)
        out.append(b")")
    else:
        raise TypeError(f"not an IMAP value: {type(value).__name__}")


def sequence_set(numbers: Sequence[int]) -> bytes:
    """Ascending numbers → the shortest ``1:3,7,9:10`` form (UIDPLUS, ESEARCH)."""
    parts: list[bytes] = []
    start = previous = -2
    for number in numbers:
        if number == previous + 1:
            previous = number
            continue
        if start >= 0:
            parts.append(b"%d" % start if start == previous else b"%d:%d" % (start, previous))
        start = previous = number
    if start >= 0:
        parts.append(b"%d" % start if start == previous else b"%d:%d" % (start, previous))
    return b",".join(parts)


def ranges_set(ranges: Iterable[tuple[int, int]]) -> bytes:
    """Inclusive ``(first, last)`` ranges → ``1:3,7``."""
    return b",".join(
        b"%d" % first if first == last else b"%d:%d" % (first, last) for first, last in ranges
    )


def resp_text(text: str, code: str | None = None) -> bytes:
    """``[CODE] text`` (the code without brackets, e.g. ``"UIDNEXT 7"``)."""
    body = text.encode("utf-8", "replace").replace(b"\r", b" ").replace(b"\n", b" ")
    if code:
        return b"[" + code.encode("ascii", "replace") + b"] " + body
    return body


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """A complete tagged status line: ``a1 OK [CODE] text\\r\\n``."""
    return tag.encode("ascii", "replace") + b" " + status.encode("ascii") + b" " + (
        resp_text(text, code) + b"\r\n"
    )


def untagged(status_or_data: str | bytes, text: str | None = None,
             code: str | None = None) -> bytes:
    """``* OK [CODE] text\\r\\n`` when ``text`` is given, otherwise ``* <data>\\r\\n``."""
    head = (
        status_or_data.encode("utf-8") if isinstance(status_or_data, str) else status_or_data
    )
    if text is None:
        return b"* " + head + b"\r\n"
    return b"* " + head + b" " + resp_text(text, code) + b"\r\n"
