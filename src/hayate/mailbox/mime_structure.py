"""ENVELOPE and BODY/BODYSTRUCTURE of a message as IMAP value trees (RFC 3501 §7.4.2).

The trees use the types of ``hayate.imap.response`` (None, int, str, bytes, lists) plus
:class:`PackedList` for the two places where the grammar puts items back to back without
a space: the bodies of a multipart (``1*body``) and the addresses of an envelope field
(``1*address``).

ENVELOPE (Dovecot's choices where RFC 3501 is silent): string fields are the raw header
values, unfolded, without leading whitespace, not MIME-decoded (the subject and display
names also with every whitespace run made one space); with repeated fields the
last Date/Subject/In-Reply-To/Message-ID wins and address fields are concatenated; Sender
and Reply-To default to From.

BODYSTRUCTURE: type and subtype as written (``"text" "plain"`` by default), parameters as
parsed by ``mime_fields`` (``charset=us-ascii`` added to text parts that lack one),
Content-ID, Description, Transfer-Encoding (``"7bit"`` by default), size (octets of the
body as stored), lines for text/* and message/rfc822, MD5 from Content-MD5, disposition,
language and location. ``extended=False`` gives the BODY form without extension data.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from hayate.mailbox.mime_address import Address, parse_addresses
from hayate.mailbox.mime_fields import (
    Params,
    decode_raw,
    imap_text,
    parse_disposition,
    parse_language,
    read_token,
    skip_cfws,
)
from hayate.mailbox.mime_parts import MimePart, field_value

Value: TypeAlias = "int | str | bytes | list[Value] | tuple[Value, ...] | None"


class PackedList(list[Value]):
    """A parenthesized list whose first ``packed`` items are written without the space
    that separates the others: ``((a)(b) "mixed")`` is ``PackedList([a, b, "mixed"], 2)``."""

    __slots__ = ("packed",)

    def __init__(self, items: list[Value], packed: int) -> None:
        super().__init__(items)
        self.packed = packed


_ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")


_WHITESPACE = re.compile(rb"[ \t\r\n]+")


def _for_humans(value: bytes) -> bytes:
    """Whitespace runs made one space, none at the ends (Dovecot does this to the subject
    and to display names, which are meant to be shown)."""
    return _WHITESPACE.sub(b" ", value).strip(b" ")


def _raw_string(value: bytes) -> str | bytes:
    if value.isascii():
        return value.decode("ascii")
    return imap_text(decode_raw(value))


def _opt(text: str | None) -> str | bytes | None:
    return None if text is None else imap_text(text)


def _address(a: Address) -> Value:
    return [_opt(a.name), _opt(a.adl), _opt(a.mailbox), _opt(a.host)]


def _address_list(addresses: list[Address]) -> Value:
    if not addresses:
        return None
    items = [_address(a) for a in addresses]
    return PackedList(items, len(items))


def envelope(part: MimePart) -> Value:
    """The ENVELOPE of the message whose header is ``part``'s."""
    strings: dict[str, bytes] = {}
    addresses: dict[str, list[Address]] = {name: [] for name in _ADDRESS_FIELDS}
    data = part.data
    for f in part.fields:
        key = f.key
        if key in ("date", "subject", "in-reply-to", "message-id"):
            strings[key] = field_value(data, f)
        elif key in addresses:
            addresses[key].extend(parse_addresses(decode_raw(field_value(data, f))))
    sender = addresses["sender"] or addresses["from"]
    reply_to = addresses["reply-to"] or addresses["from"]

    def string(name: str) -> Value:
        value = strings.get(name)
        return None if value is None else _raw_string(value)

    subject = strings.get("subject")
    return [
        string("date"),
        None if subject is None else _raw_string(_for_humans(subject)),
        _address_list(addresses["from"]),
        _address_list(sender),
        _address_list(reply_to),
        _address_list(addresses["to"]),
        _address_list(addresses["cc"]),
        _address_list(addresses["bcc"]),
        string("in-reply-to"),
        string("message-id"),
    ]


def _params(params: Params) -> Value:
    if not params:
        return None
    out: list[Value] = []
    for key, value in params:
        out.append(imap_text(key))
        out.append(imap_text(value))
    return out


def _nstring(part: MimePart, name: str) -> Value:
    value = part.first(name)
    return None if value is None else _raw_string(value)


def _encoding(part: MimePart) -> Value:
    raw = part.first("content-transfer-encoding")
    if raw is None:
        return "7bit"
    text = decode_raw(raw)
    token, _ = read_token(text, skip_cfws(text, 0))
    return imap_text(token) if token else "7bit"


def _disposition(part: MimePart) -> Value:
    parsed = parse_disposition(part.first("content-disposition"))
    if parsed is None:
        return None
    kind, params = parsed
    return [imap_text(kind), _params(params)]


def _language(part: MimePart) -> Value:
    tags = parse_language(part.first("content-language"))
    if tags is None:
        return None
    return [imap_text(t) for t in tags]


def _extension(part: MimePart) -> list[Value]:
    return [_disposition(part), _language(part), _nstring(part, "content-location")]


def body(part: MimePart, extended: bool) -> Value:
    """BODYSTRUCTURE (``extended``) or BODY of ``part`` and everything below it."""
    ctype = part.content_type
    if part.children:
        bodies = [body(child, extended) for child in part.children]
        items: list[Value] = [*bodies, imap_text(ctype.subtype)]
        if extended:
            items.append(_params(ctype.params))
            items.extend(_extension(part))
        return PackedList(items, len(bodies))
    data = part.data
    items = [
        imap_text(ctype.type),
        imap_text(ctype.subtype),
        _params(ctype.params),
        _nstring(part, "content-id"),
        _nstring(part, "content-description"),
        _encoding(part),
        part.end - part.body_start,
    ]
    if part.message is not None:
        items.append(envelope(part.message))
        items.append(body(part.message, extended))
        items.append(data.count(b"\n", part.body_start, part.end))
    elif ctype.is_text:
        items.append(data.count(b"\n", part.body_start, part.end))
    if extended:
        items.append(_nstring(part, "content-md5"))
        items.extend(_extension(part))
    return items
