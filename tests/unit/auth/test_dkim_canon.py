"""Relaxed and simple canonicalization: fixed cases from RFC 6376 3.4, and agreement with
dkimpy's own implementation on many generated messages."""

from __future__ import annotations

import random

import pytest
from dkim.canonicalization import Relaxed, Simple

from hayate.auth.canon import (
    collapse_wsp,
    field_name,
    field_value,
    header_fields,
    relaxed_body,
    relaxed_header,
    simple_body,
    simple_header,
    split_message,
    to_crlf,
)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (b"Subject: hello", b"subject:hello\r\n"),
        (b"SUBJECT :  hello \t there  ", b"subject:hello there\r\n"),
        (b"To: a@example.com,\r\n\tb@example.com", b"to:a@example.com, b@example.com\r\n"),
        (b"To: a@example.com,\r\n   \r\n b@example.com", b"to:a@example.com, b@example.com\r\n"),
        (b"X-Empty:", b"x-empty:\r\n"),
        (b"X-Empty:   \t", b"x-empty:\r\n"),
    ],
)
def test_relaxed_header(field: bytes, expected: bytes) -> None:
    assert relaxed_header(field) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n\r\n", b""),
        (b"hello\r\n", b"hello\r\n"),
        (b"hello", b"hello\r\n"),  # no trailing CRLF: one is added
        (b"hello\r\n\r\n\r\n", b"hello\r\n"),  # trailing empty lines go
        (b"a  \t b \r\nc\t\r\n", b"a b\r\nc\r\n"),  # runs collapse, line-end whitespace goes
        (b" \r\n\t\r\nx\r\n", b"\r\n\r\nx\r\n"),  # whitespace-only lines become empty
        (b"x\r\n \r\n\t \r\n", b"x\r\n"),  # ... and are removed at the end
        (b"x\r\n ", b"x\r\n"),  # a last line of whitespace without CRLF
        (b"x \r\n\r\ny", b"x\r\n\r\ny\r\n"),
    ],
)
def test_relaxed_body(body: bytes, expected: bytes) -> None:
    assert relaxed_body(body) == expected


def test_split_and_fields() -> None:
    msg = b"From: a@x.test\r\nSubject: one\r\n two\r\nTo : b@y.test\r\n\r\nbody\r\n\r\nmore\r\n"
    head, body = split_message(msg)
    assert body == b"body\r\n\r\nmore\r\n"
    fields = header_fields(head)
    assert fields == [b"From: a@x.test", b"Subject: one\r\n two", b"To : b@y.test"]
    assert [field_name(f) for f in fields] == [b"from", b"subject", b"to"]
    assert field_value(fields[1]) == b"one two"
    assert split_message(b"From: a\r\n") == (b"From: a", b"")
    assert split_message(b"\r\nbody") == (b"", b"body")


def test_to_crlf() -> None:
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    same = b"a\r\nb\r\n"
    assert to_crlf(same) is same


def test_collapse_wsp_long_runs() -> None:
    assert collapse_wsp(b"a" + b" " * 1000 + b"\t\tb") == b"a b"


def _random_text(rng: random.Random, lines: int) -> bytes:
    pieces = [b"word", b" ", b"  ", b"\t", b" \t ", b"x", b"\xc3\xa9", b""]
    out = []
    for _ in range(lines):
        out.append(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))))
    text = b"\r\n".join(out)
    return text + rng.choice([b"", b"\r\n", b"\r\n\r\n", b" ", b"\r\n \r\n"])


def test_body_agrees_with_dkimpy() -> None:
    # A body that does not end in CRLF gets one on the way (SMTP DATA always ends a line),
    # so ours treats its last line like any other; dkimpy keeps whitespace at its end.
    rng = random.Random(6376)
    for _ in range(500):
        body = _random_text(rng, rng.randint(0, 6))
        in_transit = body if body.endswith(b"\r\n") or not body else body + b"\r\n"
        assert relaxed_body(body) == Relaxed.canonicalize_body(in_transit), body


def test_headers_agree_with_dkimpy() -> None:
    rng = random.Random(8463)
    for _ in range(300):
        value = _random_text(rng, rng.randint(1, 3)).replace(b"\r\n", b"\r\n\t")
        field = b"X-Test" + rng.choice([b"", b" ", b"\t"]) + b":" + value.rstrip(b"\r\n\t")
        name, _, rest = field.partition(b":")
        (theirs,) = Relaxed.canonicalize_headers([(name, rest)])
        assert relaxed_header(field) == theirs[0] + b":" + theirs[1], field


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", b"\r\n"),  # an empty body is one CRLF (RFC 6376 3.4.3)
        (b"\r\n", b"\r\n"),
        (b"\r\n\r\n\r\n", b"\r\n"),
        (b"hello", b"hello\r\n"),
        (b"hello \t", b"hello \t\r\n"),  # whitespace is kept, even on an unterminated line
        (b"a  b \r\n\r\n", b"a  b \r\n"),
        (b" \r\n", b" \r\n"),  # a line of whitespace is not an empty line
        (b"x\n\r\n", b"x\n\r\n"),  # a bare LF is not a line end
        (b"x\r\r\n\r\n", b"x\r\r\n"),
    ],
)
def test_simple_body(body: bytes, expected: bytes) -> None:
    assert simple_body(body) == expected


def test_simple_header_is_the_field_as_it_is() -> None:
    field = b"SUBJECT :  hello \t\r\n\tthere  "
    assert simple_header(field) == field + b"\r\n"


def test_simple_body_agrees_with_dkimpy() -> None:
    rng = random.Random(3431)
    for _ in range(500):
        body = _random_text(rng, rng.randint(0, 6))
        assert simple_body(body) == Simple.canonicalize_body(body), body


def test_simple_body_with_a_long_run_of_empty_lines() -> None:
    body = b"x" + b"\r\n" * 2_000_000 + b"\n" + b"\r\n" * 3
    assert simple_body(body) == b"x" + b"\r\n" * 2_000_000 + b"\n\r\n"
