"""Rendering FETCH responses (RFC 3501 §7.4.2, RFC 3516 BINARY, RFC 7162 MODSEQ).

``render`` writes one complete ``* n FETCH (...)\\r\\n`` line for one message, items in the
order asked. The caller (the session) decides which items: for a UID command the parser
already put UID first; when CONDSTORE is on it passes ``modseq=True`` and MODSEQ is added.

Cost: the message is parsed as MIME (``hayate.mailbox.mime``) only when an item needs its
structure — ENVELOPE, BODY, BODYSTRUCTURE, a BODY[] section other than the whole message,
RFC822.HEADER/TEXT, BINARY. ``BODY[]``, ``BODY.PEEK[]``, ``RFC822`` and the metadata items
(UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ) never parse anything, so mbsync's
``UID FETCH n (BODY.PEEK[])`` is a slice and a join.

Choices (Dovecot's where RFC 3501 is silent):
- INTERNALDATE is written in UTC (``+0000``): the store keeps seconds since the epoch.
- Section contents are always literals, ``{0}`` when empty — a section or BINARY part
  that does not exist, a partial past the end (as Dovecot does).
- BINARY content holding a NUL byte is sent as a literal8 (``~{n}``).
- An encoding BINARY cannot undo raises ``hayate.mailbox.mime.UnknownEncoding``: the
  session answers ``NO [UNKNOWN-CTE]``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from hayate.imap import response
from hayate.imap.commands import FetchItem, Section
from hayate.mailbox import mime
from hayate.mailbox.model import SYSTEM_FLAGS, MessageInfo

RECENT = "\\Recent"
_METADATA = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})
_WHOLE = Section()
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")
_SYSTEM_ORDER = {flag: index for index, flag in enumerate(SYSTEM_FLAGS)}


def needs_body(items: Iterable[FetchItem]) -> bool:
    """Whether any item needs the message bytes (anything but the metadata items)."""
    return any(item.name not in _METADATA for item in items)


def needs_mime(items: Iterable[FetchItem]) -> bool:
    """Whether any item needs the MIME structure (not just the stored bytes)."""
    for item in items:
        name = item.name
        if name in _METADATA or name == "RFC822":
            continue
        if name == "BODY[]" and item.section == _WHOLE:
            continue
        if name in ("BINARY", "BINARY.SIZE") and item.section == _WHOLE:
            continue
        return True
    return False


def sets_seen(items: Iterable[FetchItem]) -> bool:
    """Whether fetching the items sets ``\\Seen`` (BODY[...] without PEEK, RFC822,
    RFC822.TEXT, BINARY[...] without PEEK)."""
    return any(item.sets_seen for item in items)


def internaldate(timestamp: float) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"`` (UTC)."""
    t = time.gmtime(timestamp)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def flags_of(info: MessageInfo, recent: bool = False) -> bytes:
    """The FLAGS list: system flags in their usual order, keywords sorted, ``\\Recent``."""
    flags = sorted(info.flags, key=lambda f: (_SYSTEM_ORDER.get(f, 99), f))
    if recent:
        flags.append(RECENT)
    return response.flag_list(flags)


def _literal(out: list[bytes], label: bytes, data: bytes) -> None:
    """``label {n}\r\n<data>`` without copying ``data`` (``{0}`` when empty, as Dovecot)."""
    out.append(label + b" {%d}\r\n" % len(data))
    if data:
        out.append(data)


def _slice(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    start, length = partial
    return data[start : start + length]


class _Message:
    """The message's bytes and, once something asks, its MIME tree."""

    __slots__ = ("data", "parsed")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.parsed: mime.MimeMessage | None = None

    def mime(self) -> mime.MimeMessage:
        if self.parsed is None:
            self.parsed = mime.parse(self.data)
        return self.parsed

    def section(self, section: Section) -> bytes:
        if section == _WHOLE:
            return self.data
        found = mime.section(self.data, self.mime(), section.part, section.text,
                             section.fields)
        return found if found is not None else b""

    def binary(self, section: Section) -> bytes | None:
        if not section.part:
            return self.data
        return mime.binary_section(self.data, self.mime(), section.part)


def render(
    seq: int,
    info: MessageInfo,
    items: Sequence[FetchItem],
    body: bytes | None,
    *,
    modseq: bool,
    recent: bool = False,
) -> bytes:
    """``* seq FETCH (...)\\r\\n`` for one message. ``body`` is the stored message (needed
    when ``needs_body(items)``; None otherwise); ``modseq`` adds MODSEQ when the items
    lack it (CONDSTORE enabled); ``recent`` adds ``\\Recent`` to FLAGS."""
    out: list[bytes] = []
    render_into(out, seq, info, items, body, modseq=modseq, recent=recent)
    return b"".join(out)


def render_into(
    out: list[bytes],
    seq: int,
    info: MessageInfo,
    items: Sequence[FetchItem],
    body: bytes | None,
    *,
    modseq: bool,
    recent: bool = False,
) -> None:
    """``render`` appending its pieces to ``out``: message bytes are appended as they are,
    so a batch of responses is copied once, by the caller's final join."""
    out.append(b"* %d FETCH (" % seq)
    message = _Message(body) if body is not None else None
    first = True
    for item in items:
        if not first:
            out.append(b" ")
        first = False
        _render_item(out, item, info, message, recent)
    if modseq and not any(item.name == "MODSEQ" for item in items):
        out.append(b"MODSEQ (%d)" % info.modseq if first else b" MODSEQ (%d)" % info.modseq)
    out.append(b")\r\n")


def _render_item(
    out: list[bytes], item: FetchItem, info: MessageInfo, message: _Message | None,
    recent: bool,
) -> None:
    name = item.name
    if name == "UID":
        out.append(b"UID %d" % info.uid)
        return
    if name == "FLAGS":
        out.append(b"FLAGS " + flags_of(info, recent))
        return
    if name == "RFC822.SIZE":
        out.append(b"RFC822.SIZE %d" % info.size)
        return
    if name == "INTERNALDATE":
        out.append(b"INTERNALDATE " + internaldate(info.internaldate))
        return
    if name == "MODSEQ":
        out.append(b"MODSEQ (%d)" % info.modseq)
        return
    if message is None:
        raise ValueError(f"FETCH {name} needs the message body")
    if name == "BODY[]":
        section = item.section or _WHOLE
        data = _slice(message.section(section), item.partial)
        _literal(out, item.label().encode("ascii"), data)
    elif name == "RFC822":
        _literal(out, b"RFC822", message.data)
    elif name == "RFC822.HEADER":
        _literal(out, b"RFC822.HEADER", message.section(Section((), "HEADER")))
    elif name == "RFC822.TEXT":
        _literal(out, b"RFC822.TEXT", message.section(Section((), "TEXT")))
    elif name == "ENVELOPE":
        out.append(b"ENVELOPE " + response.encode(mime.envelope(message.mime())))
    elif name == "BODYSTRUCTURE":
        out.append(b"BODYSTRUCTURE " + response.encode(mime.bodystructure(message.mime(), True)))
    elif name == "BODY":
        out.append(b"BODY " + response.encode(mime.bodystructure(message.mime(), False)))
    elif name == "BINARY":
        decoded = message.binary(item.section or _WHOLE)
        label = item.label().encode("ascii")
        data = _slice(decoded or b"", item.partial)
        if b"\0" in data:
            out.append(label + b" ~{%d}\r\n" % len(data))
            out.append(data)
        else:
            _literal(out, label, data)
    elif name == "BINARY.SIZE":
        decoded = message.binary(item.section or _WHOLE)
        size = len(decoded) if decoded is not None else 0
        out.append(item.label().encode("ascii") + b" %d" % size)
    else:
        raise ValueError(f"unknown FETCH item {name}")
