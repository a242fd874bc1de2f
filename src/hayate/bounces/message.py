"""Reading one inbound report message robustly: parse bytes, decode text and headers.

Bounces are often broken MIME (wrong boundaries, unknown charsets, raw 8-bit or ISO-2022-JP
bodies, an mbox ``From `` line on top). Everything here returns text and never raises on bad
input: what cannot be decoded becomes replacement characters.
"""

from __future__ import annotations

import re
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from itertools import pairwise

_PARSER = BytesParser(policy=policy.compat32)
ADDRESS_RE = re.compile(
    r"(?<![\w.+=/-])([\w.!#$%&'*+=?^`{|}~-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z0-9-]{2,63})",
    re.ASCII,
)


def load(data: bytes) -> Message:
    """Parse one message; a parser failure falls back to a message whose body is the bytes."""
    try:
        return _PARSER.parsebytes(data)
    except Exception:
        fallback = Message()
        fallback.set_payload(data.decode("utf-8", "replace"))
        return fallback


def decode_bytes(raw: bytes, charset: str | None = None) -> str:
    """Text from bytes: the declared charset, else ISO-2022-JP when it shows, else UTF-8."""
    candidates: list[str] = []
    if b"\x1b" not in raw and b"$B" in raw and b"(B" in raw:
        raw = _restore_escapes(raw)
    if b"\x1b$B" in raw or b"\x1b$@" in raw or b"\x1b(J" in raw:
        candidates.append("iso-2022-jp")
    if charset:
        candidates.append(charset.strip().strip('"').lower())
    candidates += ["utf-8", "cp932", "latin-1"]
    for name in candidates:
        try:
            return raw.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")  # pragma: no cover - latin-1 never fails


_BARE_JIS_RE = re.compile(rb"\$B((?:[\x21-\x7e]{2})+?)\(B")


def _restore_escapes(raw: bytes) -> bytes:
    """ISO-2022-JP whose ESC bytes a gateway dropped ("$B...(B"): put them back."""
    return _BARE_JIS_RE.sub(lambda m: b"\x1b$B" + m.group(1) + b"\x1b(B", raw)


def part_text(part: Message) -> str:
    """The decoded body of a non-multipart part (transfer encoding and charset undone)."""
    if part.is_multipart():
        return ""
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        if isinstance(payload, str):
            return decode_bytes(payload.encode("utf-8", "surrogateescape"))
        return ""
    return decode_bytes(raw, part.get_content_charset())


def header(msg: Message, name: str) -> str:
    """A header's value with RFC 2047 words decoded; "" when absent or undecodable."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        chunks = decode_header(str(value))
    except Exception:
        return str(value)
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return " ".join(" ".join(out).split())


def addresses(text: str) -> list[str]:
    """Every mail address in ``text`` in order of appearance, lower-cased, without repeats."""
    seen: dict[str, None] = {}
    for match in ADDRESS_RE.finditer(text):
        address = match.group(1).strip(".").lower()
        if address.startswith("'"):
            continue
        seen.setdefault(address, None)
    return list(seen)


def first_address(text: str) -> str:
    found = addresses(text)
    return found[0] if found else ""


def walk(msg: Message) -> list[Message]:
    """All parts, the message itself included; never raises on a broken tree."""
    try:
        return list(msg.walk())
    except Exception:
        return [msg]


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def raw_body(msg: Message) -> str:
    """The whole body as text, MIME structure ignored (for messages with broken MIME)."""
    if msg.is_multipart():
        try:
            return decode_bytes(msg.as_bytes().split(b"\n\n", 1)[-1])
        except Exception:
            return ""
    return part_text(msg)


def fields_text(part: Message) -> str:
    """The text of a field-list part (message/delivery-status, message/feedback-report).

    The compat32 parser turns such bodies into a list of header blocks; this puts them back
    as text (blocks separated by a blank line) so that one reader serves every shape.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks: list[str] = []
        for block in payload:
            if isinstance(block, Message):
                lines = [f"{name}: {value}" for name, value in block.items()]
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(body)
                blocks.append("\n".join(lines))
        text = "\n\n".join(blocks)
        if "$B" in text and "\x1b" not in text:
            text = decode_bytes(text.encode("utf-8", "surrogateescape"))
        return text
    return part_text(part)


def outer_parts(msg: Message) -> list[Message]:
    """The parts of the report itself: no descent into an attached (returned) message, whose
    own delivery-status or feedback parts belong to an older report."""
    found: list[Message] = []
    stack = [msg]
    while stack and len(found) < 500:
        part = stack.pop()
        found.append(part)
        if content_type(part).startswith("message/"):
            continue
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
    return found


_MBOX_FROM_RE = re.compile(rb"^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} +\d")


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox-style file (several "From " separated messages), else [data]."""
    lines = data.split(b"\n")
    starts = [
        i
        for i, line in enumerate(lines)
        if _MBOX_FROM_RE.match(line) and (i == 0 or not lines[i - 1].strip())
    ]
    if len(starts) < 2 or starts[0] != 0:
        return [data]
    bounds = [*starts, len(lines)]
    return [b"\n".join(lines[a:b]) for a, b in pairwise(bounds)]
