"""The POP3 wire helpers: byte-stuffed message streams, TOP cutting, UIDLs, CAPA."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hayate.pop3 import wire as W


def unstuff(sent: bytes) -> bytes:
    """What a client recovers from a multi-line answer (RFC 1939 section 3)."""
    assert sent.endswith(b"\r\n.\r\n") or sent == b".\r\n"
    lines = sent[:-3].split(b"\r\n")[:-1] if sent != b".\r\n" else []
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


def stream(body: bytes, chunk: int = W.CHUNK) -> bytes:
    return b"".join(W.message_chunks(body, chunk))


def test_stuffing_of_lines_starting_with_a_dot() -> None:
    body = b".first\r\nmiddle\r\n.\r\n..two\r\nlast.\r\n"
    assert stream(body) == b"..first\r\nmiddle\r\n..\r\n...two\r\nlast.\r\n.\r\n"


def test_empty_message_and_missing_final_line_end() -> None:
    assert stream(b"") == b".\r\n"
    assert stream(b"Subject: x\r\n\r\nno end") == b"Subject: x\r\n\r\nno end\r\n.\r\n"


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_chunks_cut_anywhere_still_stuff_correctly(chunk: int) -> None:
    body = b".a\r\n.\r\nb\r\n..c\r\n" * 5
    pieces = list(W.message_chunks(body, chunk))
    assert len(pieces) > 1 or chunk == 64
    assert b"".join(pieces) == stream(body, 1 << 20)
    assert unstuff(b"".join(pieces)) == body


@given(st.lists(st.sampled_from([b".", b"..", b"a", b"", b". x", b"x."]), max_size=30),
       st.integers(min_value=1, max_value=40))
def test_round_trip(lines: list[bytes], chunk: int) -> None:
    body = b"".join(line + b"\r\n" for line in lines)
    sent = stream(body, chunk)
    assert unstuff(sent) == body
    assert b"\r\n.\r\n" not in sent[:-3] or sent == b".\r\n"


def test_bare_lf_is_sent_as_crlf() -> None:
    assert W.normalized(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    same = b"a\r\nb\r\n"
    assert W.normalized(same) is same


def test_top_cut() -> None:
    msg = b"Subject: s\r\nFrom: f\r\n\r\nl1\r\nl2\r\nl3\r\n"
    assert W.top_cut(msg, 0) == b"Subject: s\r\nFrom: f\r\n\r\n"
    assert W.top_cut(msg, 2) == b"Subject: s\r\nFrom: f\r\n\r\nl1\r\nl2\r\n"
    assert W.top_cut(msg, 99) == msg
    assert W.top_cut(b"Subject: only headers\r\n", 3) == b"Subject: only headers\r\n"
    assert W.top_cut(b"\r\nbody1\r\nbody2\r\n", 1) == b"\r\nbody1\r\n"


def test_uidl_is_uid_and_uidvalidity_in_hex() -> None:
    assert W.uidl(1, 1700000000) == "000000016553F100"
    assert W.uidl(0xFFFFFFFF, 1) == "FFFFFFFF00000001"
    assert len(W.uidl(123, 456)) <= 70  # RFC 1939: 1 to 70 characters 0x21..0x7E


def test_capabilities_before_and_after_tls() -> None:
    text = W.capabilities(stls=True, passwords=False).decode()
    lines = text.split("\r\n")
    assert lines[0] == "+OK" and lines[-2] == "." and lines[-1] == ""
    names = {line.split()[0] for line in lines[1:-2]}
    assert names == {"TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS",
                     "IMPLEMENTATION"}
    full = W.capabilities(stls=False, passwords=True).decode()
    assert "\r\nUSER\r\n" in full and "\r\nSASL PLAIN\r\n" in full and "STLS" not in full
