"""MIME structure of stored messages for IMAP: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section],
SEARCH text matching and SORT keys.

Pure functions over a message as stored (bytes, CRLF line ends). :func:`parse` reads only
the top-level header; the part tree is built the first time something needs it
(BODYSTRUCTURE, a part section, a body search), so ENVELOPE, header searches and sort keys
never scan the body. Dovecot's output is the reference for everything RFC 3501 leaves
open; broken MIME never raises.

The pieces live in ``mime_parts`` (the tree), ``mime_fields`` (Content-Type and friends),
``mime_address`` (address lists), ``mime_structure`` (value trees), ``mime_section``
(section bytes) and ``mime_text`` (decoding, matching, sort keys).

Value trees are what ``hayate.imap.response.encode`` writes: None, int, str, bytes, lists,
and :class:`PackedList` where RFC 3501 writes list items back to back (multipart bodies,
envelope addresses).
"""

from __future__ import annotations

from hayate.mailbox import mime_structure, mime_text
from hayate.mailbox.mime_parts import MimeMessage, MimePart
from hayate.mailbox.mime_section import binary_section, find_part, section
from hayate.mailbox.mime_structure import PackedList, Value
from hayate.mailbox.mime_text import UnknownEncoding, base_subject, first_address, sent_date

__all__ = [
    "MimeMessage",
    "MimePart",
    "PackedList",
    "UnknownEncoding",
    "Value",
    "base_subject",
    "binary_section",
    "bodystructure",
    "envelope",
    "find_part",
    "first_address",
    "header_matches",
    "parse",
    "section",
    "sent_date",
    "text_matches",
]


def parse(data: bytes) -> MimeMessage:
    """Parse a stored message (cheap: only the top-level header is read now)."""
    return MimeMessage(data)


def envelope(msg: MimeMessage) -> Value:
    """The ENVELOPE value tree."""
    return mime_structure.envelope(msg.top)


def bodystructure(msg: MimeMessage, extended: bool) -> Value:
    """BODYSTRUCTURE (``extended``) or BODY (non-extended) value tree."""
    return mime_structure.body(msg.root, extended)


def header_matches(msg: MimeMessage, field: str, needle: str) -> bool:
    """SEARCH HEADER ``field`` ``needle`` (and FROM/TO/CC/BCC/SUBJECT): a ``field`` of the
    top-level header contains ``needle`` after MIME decoding, case-insensitively. An empty
    needle matches every message that has the field."""
    return mime_text.header_matches(msg, field, needle)


def text_matches(data: bytes, msg: MimeMessage, needle: str, headers: bool) -> bool:
    """SEARCH TEXT (``headers=True``: header and body) or BODY (body only): the decoded
    text contains ``needle``, case-insensitively."""
    return mime_text.text_matches(msg, needle, headers)
