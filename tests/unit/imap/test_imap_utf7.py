"""Modified UTF-7 (RFC 3501 §5.1.3): round trips, known forms, strict rejection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hayate.imap import utf7

KNOWN = [
    ("INBOX", "INBOX"),
    ("", ""),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("&", "&-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("日本語", "&ZeVnLIqe-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    ("😀", "&2D3eAA-"),  # a surrogate pair
    ("a\tb", "a&AAk-b"),  # control characters are encoded
    ("é/ü", "&AOk-/&APw-"),
]


@pytest.mark.parametrize(("name", "wire"), KNOWN)
def test_known_forms(name: str, wire: str) -> None:
    assert utf7.encode(name) == wire
    assert utf7.decode(wire) == name
    assert utf7.decode(wire.encode("ascii")) == name


@given(st.text())
def test_round_trip_any_text(name: str) -> None:
    # Lone surrogates cannot be names: they have no UTF-16 form.
    name = "".join(c for c in name if not 0xD800 <= ord(c) <= 0xDFFF)
    wire = utf7.encode(name)
    assert wire.isascii() and all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert utf7.decode(wire) == name


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_without_ampersand_is_unchanged(name: str) -> None:
    assert utf7.encode(name) == name.replace("&", "&-")


INVALID = [
    ("&", "'&' without a closing '-'"),
    ("a&Jjo", "'&' without a closing '-'"),
    ("&Jjo!-", "invalid character in modified base64"),
    ("&U/BTFw-", "invalid character in modified base64"),  # '/' instead of ','
    ("&U,BTFw=-", "invalid character in modified base64"),  # padding
    ("&AGE-", "printable ASCII must not be base64-encoded"),  # "a"
    ("&ACY-", "printable ASCII must not be base64-encoded"),  # "&" encoded
    ("&APw-&APw-", "two base64 runs in a row must be one"),
    ("&A-", "modified base64 does not end on a UTF-16 code unit"),
    ("&APwA-", "modified base64 does not end on a UTF-16 code unit"),
    ("&APx-", "modified base64 has non-zero padding bits"),
    ("&2D0-", "invalid UTF-16 surrogates in modified base64"),  # lone high surrogate
    ("&3gA-", "invalid UTF-16 surrogates in modified base64"),  # lone low surrogate
    ("caf\u00e9", "control or 8-bit character in a modified UTF-7 name"),
    ("a\tb", "control or 8-bit character in a modified UTF-7 name"),
    ("&APw-\x7f", "control or 8-bit character in a modified UTF-7 name"),
]


@pytest.mark.parametrize(("wire", "reason"), INVALID)
def test_invalid_forms_raise_value_error(wire: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        utf7.decode(wire)


def test_8bit_bytes_are_rejected() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        utf7.decode("café".encode())
