"""The SASL helpers every protocol server uses: strict base64 and PLAIN messages."""

from __future__ import annotations

from hayate.core.sasl import PlainCredentials, decode_response, parse_plain


def test_decode_response_is_strict_and_knows_the_empty_response() -> None:
    assert decode_response(b"AGJvYgBwdw==") == b"\0bob\0pw"
    assert decode_response(b"=") == b""
    assert decode_response(b"") == b""
    assert decode_response(b"AGJvYgBwdw") is None  # missing padding
    assert decode_response(b"not base64!") is None


def test_parse_plain() -> None:
    assert parse_plain(b"\0bob@x.test\0secret") == PlainCredentials("", "bob@x.test", "secret")
    assert parse_plain(b"admin\0bob\0pw") == PlainCredentials("admin", "bob", "pw")
    assert parse_plain("\0jö\0pässwort".encode()) == PlainCredentials("", "jö", "pässwort")
    assert parse_plain(b"\0\0pw") is None  # no user
    assert parse_plain(b"bob\0pw") is None  # two parts
    assert parse_plain(b"\0bob\0pw\0x") is None  # four parts
    assert parse_plain(b"\0b\xffb\0pw") is None  # not UTF-8
