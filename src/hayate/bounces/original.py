"""The report's own text and the returned original message, separated.

A bounce is usually "what went wrong" in prose followed by a copy of the original message (or
just its headers): as a ``message/rfc822`` or ``text/rfc822-headers`` part, or inline after a
marker line such as "--- Below this line is a copy of the message." This module finds both
halves, so that addresses of the original (its sender, its To) are not mistaken for failed
recipients, and so that the original's envelope sender (Return-Path, where VERP lives) and
Message-ID can be reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import Parser

from hayate.bounces.message import (
    addresses,
    content_type,
    first_address,
    header,
    part_text,
    raw_body,
    walk,
)

_HEADER_PARSER = Parser(policy=policy.compat32)

# A line that introduces the returned message (or its headers) inside a text body.
_MARKER_RE = re.compile(
    r"^[ \t]*(?:"
    r"\|?[-=*_#+~]{2,}.{0,40}(?:original|copy of|returned|undeliver|follow|header|rfc ?822|below"
    r"|message text|your message|unsent|attached|元のメッセージ|送信)"
    r"|(?:original|returned|undelivered) message(?: headers?)? ?(?:follows?|is below|:)?"
    r"\s*[-=:]*\s*$"
    r"|(?:original|returned) (?:mail|message)s? (?:as )?follows?"
    r"|the (?:original|returned) message(?:'s headers?)? (?:follows|was|is below)"
    r"|(?:below|attached) (?:this line )?is a copy of"
    r"|a copy of the (?:original )?message (?:follows|is below|below)"
    r"|(?:message|original) headers? (?:follows?|are below)"
    r"|content-type: message/rfc822"
    r"|\[?original message"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
# Marker lines that introduce more of the report, not the original message.
_REPORT_MARKER_RE = re.compile(
    r"address|recipient|\blog\b|transcript|session|error|reason|diagnos|status|宛先",
    re.IGNORECASE,
)
_HEADER_LINE_RE = re.compile(
    r"^(?:return-path|received|message-id|dkim-signature|from|to|subject|date|mime-version"
    r"|x-[a-z0-9-]+|content-type|delivered-to)\s*:",
    re.IGNORECASE,
)

# Headers that only a message header block has (a report may quote "Subject:" or "Date:").
_STRONG_HEADER_RE = re.compile(
    r"^(?:return-path|received|message-id|dkim-signature|mime-version|delivered-to)\s*:",
    re.IGNORECASE,
)


_MAX_REPORT = 64 * 1024  # the report's own words; a longer first part is mostly the original


@dataclass(frozen=True, slots=True)
class Original:
    """What the report shows of the message that failed."""

    sender: str = ""  # its envelope sender (Return-Path), else X-Envelope-From style headers
    message_id: str = ""
    to: tuple[str, ...] = ()  # the To/Cc of the original, a last resort for the recipient
    from_: str = ""


@dataclass(frozen=True, slots=True)
class Split:
    report: str  # the human-readable report text (what went wrong)
    original: Original


def _from_headers(headers: Message) -> Original:
    sender = ""
    for name in ("Return-Path", "X-Envelope-From", "X-Original-Sender", "X-Original-Return-Path"):
        sender = first_address(header(headers, name))
        if sender:
            break
    message_id = header(headers, "Message-ID").strip()
    to = tuple(addresses(" ".join(header(headers, n) for n in ("To", "Cc"))))
    return Original(
        sender=sender,
        message_id=message_id,
        to=to,
        from_=first_address(header(headers, "From")),
    )


def _headers_from_text(text: str) -> Message:
    lines = text.lstrip("\n").split("\n")
    # skip leading non-header lines (the rest of a marker, blank lines)
    start = 0
    while start < len(lines) and start < 5 and not _HEADER_LINE_RE.match(lines[start]):
        start += 1
    try:
        return _HEADER_PARSER.parsestr("\n".join(lines[start:]), headersonly=True)
    except Exception:
        return Message()


def _split_text(text: str) -> tuple[str, str]:
    """(report, rest) at the first marker line, else at the first block of headers."""
    for marker in _MARKER_RE.finditer(text):
        line_end = text.find("\n", marker.start())
        line = text[marker.start() : line_end if line_end >= 0 else len(text)]
        if marker.start() > 0 and not _REPORT_MARKER_RE.search(line):
            return text[: marker.start()], text[marker.end() :]
    lines = text.split("\n")
    for i in range(1, len(lines) - 1):
        window = lines[i : i + 6]
        if (
            _HEADER_LINE_RE.match(lines[i])
            and not lines[i - 1].strip()
            and sum(1 for line in window if _HEADER_LINE_RE.match(line)) >= 2
            and any(_STRONG_HEADER_RE.match(line) for line in window[:4])
        ):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return text, ""


def split(msg: Message) -> Split:
    """The report text and what is known of the original message."""
    parts = walk(msg)
    original = Original()
    texts: list[str] = []
    inside_original: set[int] = set()
    for part in parts:
        if id(part) in inside_original:
            continue
        ctype = content_type(part)
        if ctype == "message/rfc822" or ctype == "message/global":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                if not original.sender and not original.message_id:
                    original = _from_headers(payload[0])
                for sub in walk(payload[0]):
                    inside_original.add(id(sub))
            elif isinstance(payload, str) and not original.message_id:
                original = _from_headers(_headers_from_text(payload))
            continue
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"):
            if not original.sender and not original.message_id:
                original = _from_headers(_headers_from_text(part_text(part)))
            continue
        if ctype.startswith("text/") and ctype != "text/html":
            texts.append(part_text(part))
        elif ctype == "text/html" and not texts:
            texts.append(_strip_html(part_text(part)))
    if not texts and not msg.is_multipart():
        texts.append(part_text(msg))
    if not texts:
        texts.append(raw_body(msg))
    report = texts[0][:_MAX_REPORT] if texts else ""
    head, rest = _split_text(report.replace("\r\n", "\n"))
    if rest and not original.sender and not original.message_id:
        original = _from_headers(_headers_from_text(rest))
    # Further text parts before the original are part of the report too (some MTAs split).
    extra = [t for t in texts[1:2] if not _HEADER_LINE_RE.match(t.lstrip())]
    return Split(report="\n".join([head, *extra]), original=original)


def _strip_html(text: str) -> str:
    text = re.sub(r"(?is)<(?:script|style).*?</(?:script|style)>", " ", text)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\n", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&nbsp;", " ")
    )
