"""SASL pieces shared by the SMTP, IMAP and POP3 servers.

``decode_response``  a client's base64 response (RFC 4954, RFC 3501, RFC 5034), strictly
                     decoded; ``=`` is an empty response; None when it is not base64.
``parse_plain``      the PLAIN mechanism's message (RFC 4616): authorization id, user and
                     password separated by NUL, in UTF-8; None when malformed. Whether an
                     authorization id other than the user is allowed is the caller's rule.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    authzid: str  # "" when the client asked for no other identity
    user: str
    password: str


def decode_response(data: bytes) -> bytes | None:
    if data == b"=":
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        return None


def parse_plain(raw: bytes) -> PlainCredentials | None:
    parts = raw.split(b"\0")
    if len(parts) != 3:
        return None
    try:
        authzid, user, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        return None
    if not user:
        return None
    return PlainCredentials(authzid, user, password)
