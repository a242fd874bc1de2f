"""BODY[section] and BINARY[section] bytes: what Dovecot 2.3.19 returns for the same
messages (checked by hand against a real Dovecot; ``test_mime_dovecot`` compares live)."""

from __future__ import annotations

import pytest
from tests.unit.mailbox.test_mime_corpus import (
    ALTERNATIVE,
    CORPUS,
    FORWARDED,
    HEADERS_ONLY,
    MINIMAL_NO_TRAILING_CRLF,
    MISSING_BOUNDARY,
    MIXED_NESTED,
    SIMPLE,
    TOP_RFC822,
    UNTERMINATED,
)

from hayate.mailbox import mime


def fetch(data: bytes, spec: str) -> bytes | None:
    """``BODY[spec]`` the way a FETCH names it, e.g. ``2.HEADER.FIELDS (SUBJECT)``."""
    fields: tuple[str, ...] = ()
    if " (" in spec:
        spec, _, rest = spec.partition(" (")
        fields = tuple(rest.rstrip(")").split())
    numbers: list[int] = []
    words = spec.split(".") if spec else []
    while words and words[0].isdigit():
        numbers.append(int(words.pop(0)))
    text = ".".join(words) or None
    return mime.section(data, mime.parse(data), tuple(numbers), text, fields)


def header_of(data: bytes) -> bytes:
    return data[: data.index(b"\r\n\r\n") + 4]


def body_of(data: bytes) -> bytes:
    return data[data.index(b"\r\n\r\n") + 4 :]


def test_whole_header_and_text_of_a_simple_message() -> None:
    assert fetch(SIMPLE, "") == SIMPLE
    assert fetch(SIMPLE, "HEADER") == header_of(SIMPLE)
    assert fetch(SIMPLE, "TEXT") == body_of(SIMPLE)
    assert fetch(SIMPLE, "HEADER") + fetch(SIMPLE, "TEXT") == SIMPLE  # type: ignore[operator]


def test_part_one_of_a_single_part_message_is_its_body() -> None:
    assert fetch(SIMPLE, "1") == body_of(SIMPLE)
    assert fetch(SIMPLE, "1.MIME") == header_of(SIMPLE)
    assert fetch(SIMPLE, "2") is None
    assert fetch(SIMPLE, "1.1") is None
    assert fetch(SIMPLE, "1.HEADER") is None  # not a message/rfc822 part
    assert fetch(SIMPLE, "0") is None


def test_header_fields_keep_order_folding_and_end_with_an_empty_line() -> None:
    assert fetch(SIMPLE, "HEADER.FIELDS (SUBJECT from)") == (
        b"From: Alice Example <alice@example.com>\r\n"
        b"Subject: Re: [team] Lunch\r\n on Friday?\r\n\r\n"
    )
    assert fetch(SIMPLE, "HEADER.FIELDS (X-NONE)") == b"\r\n"
    not_fields = fetch(SIMPLE, "HEADER.FIELDS.NOT (RECEIVED RETURN-PATH CONTENT-TYPE "
                               "CONTENT-TRANSFER-ENCODING MIME-VERSION SUBJECT)")
    assert not_fields is not None
    assert not_fields.startswith(b"Date: Mon, 3 Mar 2025 09:59:58 +0100\r\nFrom: Alice")
    assert not_fields.endswith(b"Message-ID: <simple-1@example.com>\r\n\r\n")
    assert b"Subject" not in not_fields and b"Received" not in not_fields


def test_parts_of_a_multipart_with_a_forwarded_message() -> None:
    inner = FORWARDED[FORWARDED.index(b"From: Reports") : FORWARDED.index(b"\r\n--fwd--")]
    assert inner.endswith(b"--in--\r\n")
    assert fetch(FORWARDED, "1") == b"Forwarding this.\r\n"
    assert fetch(FORWARDED, "1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert fetch(FORWARDED, "1.1") == b"Forwarding this.\r\n"  # like Dovecot
    assert fetch(FORWARDED, "1.1.1") is None
    assert fetch(FORWARDED, "2") == inner
    assert fetch(FORWARDED, "2.MIME") == (
        b"Content-Type: message/rfc822\r\n"
        b'Content-Disposition: attachment; filename="report.eml"\r\n\r\n'
    )
    assert fetch(FORWARDED, "2.HEADER") == header_of(inner)
    assert fetch(FORWARDED, "2.TEXT") == body_of(inner)
    assert fetch(FORWARDED, "2.1") == "Numbers are up — 12 %.".encode()
    assert fetch(FORWARDED, "2.1.MIME") == (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    assert fetch(FORWARDED, "2.2") == b"<p>Numbers are up</p>"
    assert fetch(FORWARDED, "2.HEADER.FIELDS (SUBJECT)") == b"Subject: Quarterly report\r\n\r\n"
    assert fetch(FORWARDED, "2.3") is None
    assert fetch(FORWARDED, "3") is None
    assert fetch(FORWARDED, "1.HEADER") is None
    assert fetch(FORWARDED, "HEADER.FIELDS.NOT (FROM TO DATE)") == (
        b"Subject: Fwd: Quarterly report\r\nMessage-ID: <fwd-1@hayate.test>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="fwd"\r\n\r\n'
    )


def test_a_message_whose_body_is_a_message() -> None:
    inner = body_of(TOP_RFC822)
    assert fetch(TOP_RFC822, "1") == inner
    assert fetch(TOP_RFC822, "1.MIME") == header_of(TOP_RFC822)
    assert fetch(TOP_RFC822, "1.HEADER") == header_of(inner)
    assert fetch(TOP_RFC822, "1.TEXT") == b"inner body\r\nline two\r\n"
    assert fetch(TOP_RFC822, "1.1") == b"inner body\r\nline two\r\n"
    assert fetch(TOP_RFC822, "2") is None


def test_nested_multipart_body_keeps_the_line_end_of_its_close_delimiter() -> None:
    alternative = fetch(MIXED_NESTED, "1")
    assert alternative is not None
    assert alternative.startswith(b"--inner\r\n") and alternative.endswith(b"--inner--\r\n")
    assert fetch(MIXED_NESTED, "1.2") == b"<p>See the attached <b>report</b>.</p>"
    assert fetch(MIXED_NESTED, "2") == (
        b"JVBERi0xLjQgZmFrZSBwZGYgY29udGVudAolUERGLTEuNCBmYWtlIHBkZiBjb250ZW50CiVQREYt\r\n"
        b"MS40IGZha2UgcGRmIGNvbnRlbnQK"
    )
    assert fetch(MIXED_NESTED, "2.1") == fetch(MIXED_NESTED, "2")
    assert fetch(MIXED_NESTED, "2.1.1") is None
    assert fetch(MIXED_NESTED, "3") == b"iVBORw0KGgo="
    assert fetch(MIXED_NESTED, "1.1.MIME") == b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"


def test_broken_multiparts() -> None:
    assert fetch(MISSING_BOUNDARY, "1") == b""
    assert fetch(MISSING_BOUNDARY, "1.MIME") == b""
    assert fetch(MISSING_BOUNDARY, "2") is None
    assert fetch(UNTERMINATED, "1") == b"first part"
    assert fetch(UNTERMINATED, "2") == b"<p>second part, never closed</p>\r\n"
    assert fetch(CORPUS["part_no_blank"], "1.MIME") == b"Content-Type: text/html"
    assert fetch(CORPUS["prefix_boundaries"], "1") == b"--ab\r\n\r\ninner1\r\n--ab\r\n\r\ninner2"
    assert fetch(CORPUS["prefix_boundaries"], "1.2") == b"inner2"
    assert fetch(CORPUS["prefix_boundaries"], "2") == b"outer2"
    assert fetch(CORPUS["padding_boundary"], "2.MIME") == b"not a delimiter?"


def test_messages_without_a_body_or_a_final_line_end() -> None:
    assert fetch(HEADERS_ONLY, "HEADER") == HEADERS_ONLY
    assert fetch(HEADERS_ONLY, "TEXT") == b""
    assert fetch(HEADERS_ONLY, "HEADER.FIELDS (SUBJECT)") == b"Subject: only headers\r\n\r\n"
    assert fetch(MINIMAL_NO_TRAILING_CRLF, "TEXT") == b"no newline at the end"
    assert fetch(MINIMAL_NO_TRAILING_CRLF, "1") == b"no newline at the end"
    no_line_end = b"Subject: cut"
    assert fetch(no_line_end, "HEADER.FIELDS (SUBJECT)") == b"Subject: cut\r\n\r\n"
    assert fetch(no_line_end, "TEXT") == b""


def binary(data: bytes, *part: int) -> bytes | None:
    return mime.binary_section(data, mime.parse(data), part)


def test_binary_undoes_the_transfer_encoding() -> None:
    assert binary(ALTERNATIVE, 1) == (
        "Schöne Grüße aus Köln, mit einer sehr langen Zeile, die umgebrochen wurde."
    ).encode()
    assert binary(ALTERNATIVE, 2) == (
        "<html><body><p>Schöne Grüße aus Köln</p></body></html>\n".encode()
    )
    assert binary(MIXED_NESTED, 2) == b"%PDF-1.4 fake pdf content\n" * 3
    assert binary(MIXED_NESTED, 3) == b"\x89PNG\r\n\x1a\n"
    assert binary(SIMPLE, 1) == body_of(SIMPLE)
    assert binary(SIMPLE) == SIMPLE
    assert binary(SIMPLE, 4) is None
    # a multipart or an encapsulated message is sent as it is
    assert binary(MIXED_NESTED, 1) == fetch(MIXED_NESTED, "1")
    assert binary(FORWARDED, 2) == fetch(FORWARDED, "2")


def test_binary_of_an_unknown_encoding_raises() -> None:
    with pytest.raises(mime.UnknownEncoding):
        binary(CORPUS["bad_headers"], 1)


def test_broken_base64_decodes_what_it_can() -> None:
    data = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVsbG8gd29y\r\nbGQ*!\r\n"
    )
    assert binary(data, 1) == b"hello world"
