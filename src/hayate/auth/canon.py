"""DKIM canonicalization (RFC 6376 3.4) and header splitting, on bytes.

Shared by the signer (``dkim_sign``, relaxed only) and by the verifiers (``dkim_check``
uses both algorithms; ARC only needs the header fields). Everything works on the raw
message bytes with ``bytes`` methods and a few compiled regular expressions, so a 2 KB
message costs a few microseconds:

- :func:`split_message` cuts the header block from the body at the first empty line;
- :func:`header_fields` splits the header block into whole fields (continuation lines kept);
- :func:`relaxed_header` canonicalizes one field; :func:`relaxed_body` the whole body;
- :func:`simple_header` and :func:`simple_body` are the "simple" algorithm (3.4.1, 3.4.3).

Input lines are expected to end in CRLF (what ingest stores); :func:`to_crlf` fixes a
message that uses bare LF line ends, for callers that take messages from elsewhere.
"""

from __future__ import annotations

import re

_FIELD_SPLIT = re.compile(rb"\r\n(?![ \t])")  # a line break not followed by a continuation
_BARE_LF = re.compile(rb"(?<!\r)\n")
_CRLF = b"\r\n"


def to_crlf(message: bytes) -> bytes:
    """``message`` with every bare LF turned into CRLF (unchanged when it has none)."""
    if message.count(b"\n") == message.count(_CRLF):
        return message
    return _BARE_LF.sub(_CRLF, message)


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """(header block without its final CRLF, body). A message without an empty line is
    all header and has an empty body."""
    if message.startswith(_CRLF):
        return b"", message[2:]
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message.removesuffix(_CRLF), b""
    return message[:end], message[end + 4 :]


def header_fields(header_block: bytes) -> list[bytes]:
    """The fields of a header block in order, each with its continuation lines and without
    the final CRLF. Lines without a colon (not valid fields) are dropped."""
    if not header_block:
        return []
    return [f for f in _FIELD_SPLIT.split(header_block) if b":" in f]


def field_name(field: bytes) -> bytes:
    """The lower-cased name of a header field (``b"from"``)."""
    return field[: field.index(b":")].rstrip(b" \t").lower()


def field_value(field: bytes) -> bytes:
    """The unfolded value of a header field with outer whitespace removed."""
    value = field[field.index(b":") + 1 :].replace(_CRLF, b"")
    return value.strip(b" \t")


def collapse_wsp(data: bytes) -> bytes:
    """Every run of spaces and tabs in ``data`` made one space. Repeated ``bytes.replace``
    (each pass halves the runs) is several times faster than a regular expression on
    typical mail, where runs are short and rare."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data


def relaxed_header(field: bytes) -> bytes:
    """One header field in relaxed form, with its CRLF: ``name:value\\r\\n`` where the name
    is lower case, the value unfolded, runs of whitespace are one space, and whitespace at
    both ends and around the colon is gone."""
    colon = field.index(b":")
    name = field[:colon].rstrip(b" \t").lower()
    value = collapse_wsp(field[colon + 1 :].replace(_CRLF, b""))
    return name + b":" + value.strip(b" ") + _CRLF


def relaxed_body(body: bytes) -> bytes:
    """The body in relaxed form: whitespace runs become one space, whitespace at line ends
    and empty lines at the end are removed, and a non-empty body ends with exactly one CRLF
    (an empty body stays empty). A last line without CRLF is treated like every other line
    (its trailing whitespace goes too): that is what a verifier sees after SMTP, which always
    ends the data with a line break."""
    body = collapse_wsp(body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", _CRLF)
    body = body.rstrip(_CRLF)
    if body.endswith(b" "):  # a last line without CRLF that ends in whitespace
        body = body[:-1].rstrip(_CRLF)
    return body + _CRLF if body else b""


def simple_header(field: bytes) -> bytes:
    """One header field in simple form: exactly as it is, with its CRLF (RFC 6376 3.4.1)."""
    return field + _CRLF


def simple_body(body: bytes) -> bytes:
    """The body in simple form (RFC 6376 3.4.3): empty lines at the end are removed and the
    result ends with exactly one CRLF; an empty body (or one of empty lines only) is a
    single CRLF. A last line without CRLF gets one, and keeps its trailing whitespace."""
    if not body.endswith(_CRLF):
        return body + _CRLF
    # Count the CRLF pairs at the end without a Python loop: in the reversed run of CR and
    # LF characters, the pairs are LFs at even and CRs at odd positions.
    tail = body[len(body.rstrip(b"\r\n")) :][::-1]
    lfs, crs = tail[0::2], tail[1::2]
    pairs = min(len(lfs) - len(lfs.lstrip(b"\n")), len(crs) - len(crs.lstrip(b"\r")))
    end = len(body) - 2 * pairs
    return body[: end + 2] if end else _CRLF
