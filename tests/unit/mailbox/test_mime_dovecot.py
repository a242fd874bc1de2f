"""Every corpus message APPENDed to a real, private Dovecot: its ENVELOPE, BODYSTRUCTURE,
BODY and two dozen BODY[section]s must equal what ``hayate.mailbox.mime`` computes, except
for the differences listed in ``DIFFERENT`` (each with its reason)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from bench.imap_dovecot import PrivateDovecot, missing_dovecot
from tests.unit.mailbox.test_mime_corpus import CORPUS, read_value, same_tree, show

from hayate.mailbox import mime

pytestmark = pytest.mark.peer

SECTIONS = (
    "HEADER", "TEXT", "1", "1.MIME", "2", "2.MIME", "2.HEADER", "2.TEXT", "2.1", "2.1.MIME",
    "2.2", "1.1", "1.2", "3", "1.HEADER", "1.TEXT", "2.1.1", "2.2.1", "1.1.MIME", "1.2.MIME",
    "HEADER.FIELDS (SUBJECT FROM CONTENT-TYPE)", "HEADER.FIELDS.NOT (FROM TO)",
    "2.HEADER.FIELDS (SUBJECT)", "1.HEADER.FIELDS.NOT (SUBJECT)",
)
_SECTION = re.compile(
    r"([\d.]*?)\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \((.*)\))?$"
)

_STRUCTURE = ("BODYSTRUCTURE", "BODY")
DIFFERENT: dict[str, tuple[str, ...]] = {
    # Content-Type without a valid type/subtype: RFC 2045 §5.2 text/plain, not Dovecot's ""
    "ct_nosub": _STRUCTURE,
    "ct_garbage": _STRUCTURE,
    "bad_headers": _STRUCTURE,
    # bare LF: Dovecot counts (and sends) a CR per LF; Hayate stores what it stores
    "lf_only": ("BODYSTRUCTURE", "BODY", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]",
                "BODY[1.MIME]", "BODY[HEADER.FIELDS (SUBJECT FROM CONTENT-TYPE)]",
                "BODY[HEADER.FIELDS.NOT (FROM TO)]"),
    # an encapsulated header cut by a delimiter: Dovecot drops its line end from HEADER
    # (but not from the part) and reads past the part for HEADER.FIELDS.NOT
    "b64_rfc822": ("BODY[1.HEADER]", "BODY[1.1.MIME]", "BODY[1.HEADER.FIELDS.NOT (SUBJECT)]"),
    # no empty line after the header: Dovecot adds one to HEADER.FIELDS, not to .NOT
    "headers_only": ("BODY[HEADER.FIELDS.NOT (FROM TO)]",),
}


class Client:
    """Just enough IMAP to APPEND and FETCH, reading responses with their literals."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.tags = 0
        assert self._line().startswith(b"* OK")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def _bytes(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        """Send a command (with one LITERAL+ argument at the end); returns the untagged
        responses, literals inlined; fails unless the tagged answer is OK."""
        self.tags += 1
        tag = b"t%d" % self.tags
        line = tag + b" " + text
        if literal is not None:
            line += b" {%d+}\r\n" % len(literal) + literal
        self.sock.sendall(line + b"\r\n")
        responses: list[bytes] = []
        current = b""
        while True:
            part = self._line()
            current += part
            size = re.search(rb"\{(\d+)\}\r\n$", part)
            if size:
                current += self._bytes(int(size.group(1)))
                continue
            if current.startswith(tag + b" "):
                assert current.startswith(tag + b" OK"), current
                return responses
            responses.append(current)
            current = b""


def fetched_items(response: bytes) -> dict[str, Any]:
    tree, _ = read_value(response, response.index(b"("))
    return {tree[i][1].decode(): tree[i + 1] for i in range(0, len(tree), 2)}


def hayate_items(data: bytes) -> dict[str, Any]:
    msg = mime.parse(data)
    out: dict[str, Any] = {
        "ENVELOPE": mime.envelope(msg),
        "BODYSTRUCTURE": mime.bodystructure(msg, extended=True),
        "BODY": mime.bodystructure(msg, extended=False),
    }
    for spec in SECTIONS:
        match = _SECTION.match(spec)
        assert match is not None
        part = tuple(int(n) for n in match.group(1).split(".") if n)
        fields = tuple((match.group(3) or "").split())
        found = mime.section(data, msg, part, match.group(2), fields)
        out[f"BODY[{spec}]"] = b"" if found is None else found
    return out


@pytest.fixture(scope="module")
def dovecot() -> Iterator[PrivateDovecot]:
    reason = missing_dovecot()
    if reason:
        pytest.skip(reason)
    # in the system temp folder: Dovecot's unprivileged processes cannot enter pytest's
    with PrivateDovecot() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_answers(dovecot: PrivateDovecot) -> dict[str, dict[str, Any]]:
    client = Client(dovecot.port)
    client.command(b"LOGIN bench bench")
    names = sorted(CORPUS)
    for name in names:
        client.command(b"APPEND INBOX", CORPUS[name])
    client.command(b"SELECT INBOX")
    items = b"ENVELOPE BODYSTRUCTURE BODY " + b" ".join(
        b"BODY.PEEK[%s]" % spec.encode() for spec in SECTIONS
    )
    responses = client.command(b"FETCH 1:* (" + items + b")")
    assert len(responses) == len(names)
    return {name: fetched_items(r) for name, r in zip(names, responses, strict=True)}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_as_dovecot(name: str, dovecot_answers: dict[str, dict[str, Any]]) -> None:
    theirs = dovecot_answers[name]
    mine = hayate_items(CORPUS[name])
    assert sorted(theirs) == sorted(mine)
    differing = {
        item: (show(mine[item]), show(theirs[item]))
        for item in mine
        if not same_tree(mine[item], theirs[item])
    }
    expected = set(DIFFERENT.get(name, ()))
    assert set(differing) == expected, {k: v for k, v in differing.items() if k not in expected}
