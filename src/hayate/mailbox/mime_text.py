"""Text of a message for SEARCH and SORT: MIME-decoded headers and bodies, and the RFC 5256
sort keys.

- Header values are unfolded and their RFC 2047 encoded-words decoded (adjacent words of
  one charset are joined before decoding, so a multi-byte character split across two
  words survives); raw 8-bit header bytes are read as UTF-8, else as Latin-1.
- Body text comes from text/* parts, after undoing quoted-printable or base64 and decoding
  the charset; an encapsulated message contributes its header and its text parts. Other
  parts (images, PDFs…) are not searched.
- Matching is case-insensitive substring matching on ``str.casefold()``.
- Sort keys: the base subject (RFC 5256 §2.1), the sent date from the Date header, the
  mailbox (local part) of the first address of a field; keys are casefolded so that
  plain string comparison orders them the way the RFC asks.
"""

from __future__ import annotations

import binascii
import calendar
import codecs
import re
from collections.abc import Iterator
from email.utils import parsedate_tz
from functools import lru_cache

from hayate.mailbox.mime_address import MISSING_MAILBOX, parse_addresses
from hayate.mailbox.mime_fields import decode_raw, read_token, skip_cfws
from hayate.mailbox.mime_parts import MimeMessage, MimePart, field_value

# Labels seen in real mail that Python does not know, or knows as a narrower charset.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "iso-8859-1": "cp1252",
    "us-ascii": "utf-8",  # 8-bit text labelled us-ascii is nearly always UTF-8
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "utf8": "utf-8",
}

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_SPACE_RUN = re.compile(r"[ \t\r\n]+")


class UnknownEncoding(ValueError):
    """A Content-Transfer-Encoding this server cannot undo (IMAP BINARY's UNKNOWN-CTE)."""


@lru_cache(maxsize=256)
def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = label.split("*", 1)[0]  # RFC 2231 language suffix: "utf-8*en"
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, UnicodeError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # base64, zlib, rot13…: codecs, not charsets
    return info.name


def to_text(data: bytes, charset: str | None) -> str:
    """Bytes in ``charset`` as text. When they are not valid in it: UTF-8 if they are
    valid UTF-8, else the charset with replacement characters (or Latin-1 when the
    charset was unknown or UTF-8 itself)."""
    codec = _codec(charset) if charset else None
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is None or codec == "utf-8":
        return data.decode("latin-1")
    return data.decode(codec, "replace")


def _raw_header_text(value: bytes) -> str:
    if value.isascii():
        return value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "bB":
            return _base64(text.encode("ascii"))
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded-words decoded (words that do not decode are
    left as they are); whitespace between two encoded-words is dropped."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pos = 0
    pending: list[bytes] = []
    pending_charset = ""
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        raw = _word_bytes(match.group(2), match.group(3))
        codec = _codec(match.group(1))
        if raw is None or codec is None:
            if pending:
                out.append(to_text(b"".join(pending), pending_charset))
                pending = []
            out.append(between)
            out.append(match.group(0))
            pos = match.end()
            continue
        adjacent = bool(pending) and not between.strip(" \t\r\n")
        if adjacent and codec == pending_charset:
            pending.append(raw)
        else:
            if pending:
                out.append(to_text(b"".join(pending), pending_charset))
                pending = []
            if not adjacent:
                out.append(between)
            pending = [raw]
            pending_charset = codec
        pos = match.end()
    if pending:
        out.append(to_text(b"".join(pending), pending_charset))
    out.append(text[pos:])
    return "".join(out)


def decode_header(value: bytes) -> str:
    """A header value (already unfolded) as text, encoded-words decoded."""
    return decode_words(_raw_header_text(value))


# -- bodies -----------------------------------------------------------------------------


def _base64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        pass
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    clean = clean[: len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)]
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


def transfer_encoding(part: MimePart) -> str:
    raw = part.first("content-transfer-encoding")
    if raw is None:
        return "7bit"
    text = decode_raw(raw)
    token, _ = read_token(text, skip_cfws(text, 0))
    return token.lower() or "7bit"


def decoded_body(part: MimePart) -> bytes:
    """The part's body with its transfer encoding undone. Raises UnknownEncoding."""
    encoding = transfer_encoding(part)
    body = part.body_bytes
    if encoding in ("7bit", "8bit", "binary"):
        return body
    if encoding == "base64":
        return _base64(body)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    raise UnknownEncoding(encoding)


def _part_text(part: MimePart) -> str:
    try:
        raw = decoded_body(part)
    except UnknownEncoding:
        raw = part.body_bytes
    return to_text(raw, part.content_type.charset)


def header_text(part: MimePart) -> str:
    """The whole header as text: ``Name: decoded value`` lines."""
    data = part.data
    lines = []
    for f in part.fields:
        name = data[f.start : f.value_start].decode("latin-1")
        lines.append(name + " " + decode_header(field_value(data, f)))
    return "\r\n".join(lines)


def _texts(part: MimePart) -> Iterator[str]:
    """The searchable texts of ``part``'s body, in order."""
    if part.children:
        for child in part.children:
            yield from _texts(child)
    elif part.message is not None:
        yield header_text(part.message)
        yield from _texts(part.message)
    elif part.content_type.is_text:
        yield _part_text(part)


# -- matching ----------------------------------------------------------------------------


def header_matches(msg: MimeMessage, field: str, needle: str) -> bool:
    """SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT: some ``field`` contains ``needle``."""
    name = field.lower()
    wanted = needle.casefold()
    data = msg.data
    for f in msg.fields:
        if f.key == name:
            if not wanted:
                return True
            if wanted in decode_header(field_value(data, f)).casefold():
                return True
    return False


def text_matches(msg: MimeMessage, needle: str, headers: bool) -> bool:
    """SEARCH TEXT (``headers``) or BODY: the decoded text contains ``needle``."""
    wanted = needle.casefold()
    if not wanted:
        return True
    root = msg.root
    if headers and wanted in header_text(root).casefold():
        return True
    return any(wanted in text.casefold() for text in _texts(root))


# -- sort keys ---------------------------------------------------------------------------

_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"^(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:\s*", re.IGNORECASE)
_LEADING_BLOB = re.compile(rf"^{_BLOB}")
_FWD_WRAPPER = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


def base_subject(msg: MimeMessage) -> str:
    """The RFC 5256 base subject of the (last) Subject field, casefolded."""
    values = msg.values("subject")
    if not values:
        return ""
    subject = _SPACE_RUN.sub(" ", decode_header(values[-1]))
    while True:
        subject = _TRAILER.sub("", subject)  # (2)
        while True:  # (3)-(5)
            before = subject
            subject = subject.lstrip(" ")
            match = _LEADER.match(subject)
            if match:
                subject = subject[match.end() :]
            match = _LEADING_BLOB.match(subject)
            if match and subject[match.end() :]:
                subject = subject[match.end() :]
            if subject == before:
                break
        wrapped = _FWD_WRAPPER.match(subject)  # (6)
        if wrapped is None:
            break
        subject = wrapped.group(1)
    return subject.strip(" ").casefold()


def sent_date(msg: MimeMessage) -> float | None:
    """The Date field as seconds since the epoch; None when absent or unreadable (RFC
    5256: the caller then uses the internal date)."""
    values = msg.values("date")
    if not values:
        return None
    parsed = parsedate_tz(_raw_header_text(values[-1]))
    if parsed is None:
        return None
    offset = parsed[9] or 0
    try:
        return float(calendar.timegm((*parsed[:6], 0, 1, -1))) - offset
    except (OverflowError, ValueError):
        return None


def first_address(msg: MimeMessage, field: str) -> str:
    """The mailbox (local part) of the first address of ``field``, casefolded; "" when
    there is none (RFC 5256 FROM/TO/CC sort keys)."""
    for value in msg.values(field.lower()):
        for address in parse_addresses(decode_raw(value)):
            if address.is_group_marker:
                continue
            if address.mailbox and address.mailbox != MISSING_MAILBOX:
                return address.mailbox.casefold()
            return ""
    return ""
