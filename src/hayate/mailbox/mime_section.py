"""BODY[section] and BINARY[section] contents (RFC 3501 §6.4.5, RFC 3516), exact bytes.

Part numbers follow RFC 3501 the way Dovecot reads it (see :func:`find_part`): part 1 of a
message that is not multipart is its body; below a ``message/rfc822`` part, numbers address
the parts of the encapsulated message. ``HEADER``, ``TEXT`` and ``HEADER.FIELDS[.NOT]``
apply to the message itself (empty part path) or to a ``message/rfc822`` part; ``MIME`` to
any part. A part or section that does not exist gives None (IMAP servers answer with an
empty string). HEADER.FIELDS keeps the fields' order and folding and always ends with an
empty line.
"""

from __future__ import annotations

from hayate.mailbox.mime_parts import CRLF, MimeMessage, MimePart
from hayate.mailbox.mime_text import decoded_body


def find_part(msg: MimeMessage, path: tuple[int, ...]) -> MimePart | None:
    """The part numbered ``path`` (the message itself for ``()``).

    Walking down: in a multipart, number n is its n-th child; anywhere else only 1 exists
    and means the part itself. When more numbers follow, a message/rfc822 part stands for
    the message it encapsulates, and any other leaf ends the walk with nothing.
    """
    if not path:
        return msg.top  # the header and body of the message need no tree
    part: MimePart | None = msg.root
    last = len(path) - 1
    for index, number in enumerate(path):
        if part is None:
            return None
        more = index < last
        if part.children:
            if not 1 <= number <= len(part.children):
                return None
            part = part.children[number - 1]
            if more and part.message is not None:
                part = part.message
        else:
            if number != 1:
                return None
            if more:
                part = part.message
    return part


def _header_fields(part: MimePart, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {name.lower() for name in names}
    data = part.data
    out: list[bytes] = []
    for f in part.fields:
        if (f.key in wanted) == keep:
            line = data[f.start : f.end]
            out.append(line if line.endswith(b"\n") else line + CRLF)
    out.append(CRLF)
    return b"".join(out)


def section(
    data: bytes, msg: MimeMessage, part: tuple[int, ...], text: str | None,
    fields: tuple[str, ...] = (),
) -> bytes | None:
    """The bytes of ``BODY[part.text (fields)]``; ``text`` is None, ``HEADER``,
    ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT`` or ``MIME``."""
    if not part and text is None:
        return data
    found = find_part(msg, part)
    if found is None:
        return None
    kind = text.upper() if text else None
    if kind is None:
        return found.body_bytes
    if kind == "MIME":
        return found.header_bytes if part else None
    if part:
        if found.message is None:
            return None
        found = found.message
    if kind == "HEADER":
        return found.header_bytes
    if kind == "TEXT":
        return found.body_bytes
    if kind == "HEADER.FIELDS":
        return _header_fields(found, fields, True)
    if kind == "HEADER.FIELDS.NOT":
        return _header_fields(found, fields, False)
    return None


def binary_section(data: bytes, msg: MimeMessage, part: tuple[int, ...]) -> bytes | None:
    """``BINARY[part]``: the part's body with its Content-Transfer-Encoding undone (the
    whole message as stored for ``()``; multiparts and messages as they are). None when
    the part does not exist; raises ``UnknownEncoding`` for an encoding it cannot undo."""
    if not part:
        return data
    found = find_part(msg, part)
    if found is None:
        return None
    if found.children or found.message is not None:
        return found.body_bytes
    return decoded_body(found)
