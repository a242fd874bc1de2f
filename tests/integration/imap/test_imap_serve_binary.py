"""RFC 3516 BINARY with Python's imaplib against a real ``hayate serve`` over IMAPS: the
capability after login, BINARY[part] decoding base64 and quoted-printable (NUL bytes as a
literal8), BINARY.PEEK leaving \\Seen alone, BINARY.SIZE, partial fetches and
``NO [UNKNOWN-CTE]``."""

from __future__ import annotations

import base64
import imaplib
import re
from collections.abc import Callable, Sequence

from tests.integration.imap.conftest import PASSWORD, Served

ATTACHMENT = bytes(range(256)) * 4  # every byte value, NUL included
TEXT = "Grüße, café!"  # the CRLF before the boundary belongs to the boundary
MESSAGE = (
    "From: sender@example.com\r\nTo: someone@hayate.test\r\nSubject: binary\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Gr=C3=BC=C3=9Fe, caf=C3=A9!\r\n"
    "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    "\r\n" + base64.encodebytes(ATTACHMENT).decode().replace("\n", "\r\n")
    + "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-magic\r\n"
    "\r\nunknown\r\n--b1--\r\n"
).encode()


def literal_of(data: Sequence[object]) -> bytes:
    """The literal of a single-message, single-literal FETCH answer."""
    first = data[0]
    assert isinstance(first, tuple), data
    return bytes(first[1])


def first_line(data: Sequence[object]) -> bytes:
    """The first line of an answer without literals."""
    first = data[0]
    assert isinstance(first, bytes), data
    return first


def flags(client: imaplib.IMAP4, uid: str) -> bytes:
    typ, data = client.uid("FETCH", uid, "(FLAGS)")
    assert typ == "OK"
    found = data[0]
    assert isinstance(found, bytes)
    return found


def test_binary_fetch_end_to_end(served: Served, account: Callable[[], str]) -> None:
    user = account()
    client = imaplib.IMAP4_SSL("localhost", served.imaps, ssl_context=served.tls_context(),
                               timeout=10)
    try:
        assert "BINARY" not in client.capabilities  # not before login
        client.login(user, PASSWORD)
        assert b"BINARY" in client.capability()[1][0].split()
        typ, data = client.append("INBOX", None, None, MESSAGE)
        assert typ == "OK"
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert found is not None
        uid = found.group(1).decode()
        assert client.select("INBOX")[0] == "OK"

        typ, data = client.uid("FETCH", uid, "(BINARY.SIZE[2] BINARY.SIZE[1])")
        assert typ == "OK"
        sizes = first_line(data)
        assert f"BINARY.SIZE[2] {len(ATTACHMENT)}".encode() in sizes
        assert f"BINARY.SIZE[1] {len(TEXT.encode())}".encode() in sizes

        typ, data = client.uid("FETCH", uid, "(BINARY.PEEK[2])")
        assert typ == "OK"
        assert literal_of(data) == ATTACHMENT
        assert b"~{%d}" % len(ATTACHMENT) in literal_head(data)  # NULs: sent as literal8
        assert b"\\Seen" not in flags(client, uid)

        typ, data = client.uid("FETCH", uid, "(BINARY.PEEK[2]<250.10>)")
        assert typ == "OK"
        assert literal_of(data) == ATTACHMENT[250:260]

        typ, data = client.uid("FETCH", uid, "(BINARY[1])")
        assert typ == "OK"
        assert literal_of(data) == TEXT.encode()
        assert b"\\Seen" in flags(client, uid)  # BINARY[] without PEEK sets \Seen

        typ, data = client.uid("FETCH", uid, "(BINARY.PEEK[3])")
        assert typ == "NO" and b"[UNKNOWN-CTE]" in first_line(data)
        assert client.noop()[0] == "OK"  # the session goes on
    finally:
        client.logout()


def literal_head(data: Sequence[object]) -> bytes:
    first = data[0]
    assert isinstance(first, tuple)
    return bytes(first[0])
