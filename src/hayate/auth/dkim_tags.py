"""DKIM tag=value lists (RFC 6376 3.2), used by signatures and by key records.

:func:`parse_tags` turns ``v=1; a=rsa-sha256; b=...`` into a dict of raw values: tag names
are case-sensitive, whitespace (including folding) around names and values is dropped,
whitespace inside a value is kept (``b=`` and ``p=`` may be folded; their users remove
it), a final ``;`` is allowed. A spec without ``=``, a name that is not ``ALPHA *(ALPHA /
DIGIT / "_")`` or a tag given twice makes the whole list invalid (:class:`TagListError`).

:func:`without_b_value` is the DKIM-Signature field as it was when its b= was computed:
the same bytes with the b= value (and the whitespace around it) deleted (RFC 6376 3.7).
"""

from __future__ import annotations

import re

_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*")
_FWS = b" \t\r\n"


class TagListError(ValueError):
    """A tag-list that does not follow RFC 6376 3.2."""


def parse_tags(text: bytes) -> dict[bytes, bytes]:
    """The tags of ``text`` (a field value or a TXT record) by name, values unstripped inside."""
    specs = text.split(b";")
    if not specs[-1].strip(_FWS):
        specs.pop()  # a trailing ";" (or an empty list)
    tags: dict[bytes, bytes] = {}
    for spec in specs:
        name, equals, value = spec.partition(b"=")
        name = name.strip(_FWS)
        if not equals or _NAME.fullmatch(name) is None:
            shown = spec.strip(_FWS)[:40].decode("ascii", "replace")
            raise TagListError(f"bad tag {shown!r}")
        if name in tags:
            raise TagListError(f"duplicate {name.decode()}= tag")
        tags[name] = value.strip(_FWS)
    return tags


def without_b_value(field: bytes) -> bytes:
    """``field`` (a whole header field) with everything between ``b=`` and the next ``;``
    (or the end) removed; unchanged when it has no b= tag. Values cannot contain ``;``."""
    pos = field.find(b":") + 1
    while pos <= len(field):
        end = field.find(b";", pos)
        if end < 0:
            end = len(field)
        equals = field.find(b"=", pos, end)
        if equals >= 0 and field[pos:equals].strip(_FWS) == b"b":
            return field[: equals + 1] + field[end:]
        pos = end + 1
    return field
