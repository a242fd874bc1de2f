"""Encoding value trees and response lines (what clients read back)."""

from __future__ import annotations

import imaplib

import pytest

from hayate.imap import response as R
from hayate.imap.commands import SequenceSet
from hayate.imap.response import Atom


def test_value_tree_encoding() -> None:
    tree: R.Value = [
        Atom("FLAGS"), (Atom("\\Seen"), Atom("$Work")), 42, None, "plain", 'q"u\\ote',
        b"bytes", [], ("nested", [1, 2]),
    ]
    assert R.encode(tree) == (
        b'(FLAGS (\\Seen $Work) 42 NIL "plain" "q\\"u\\\\ote" "bytes" () ("nested" (1 2)))'
    )


def test_strings_that_cannot_be_quoted_become_literals() -> None:
    assert R.encode("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert R.encode("naïve") == b"{6}\r\nna\xc3\xafve"
    assert R.encode(b"nul\0") == b"{4}\r\nnul\0"
    long = "x" * (R.QUOTED_MAX + 1)
    assert R.encode(long) == b"{%d}\r\n" % len(long) + long.encode()
    assert R.encode("") == b'""'


def test_numbers_and_bad_values() -> None:
    assert R.encode(0) == b"0"
    assert R.encode(2**63 - 1) == b"9223372036854775807"
    with pytest.raises(TypeError):
        R.encode(True)
    with pytest.raises(TypeError):
        R.encode(1.5)  # type: ignore[arg-type]


def test_astring_and_mailbox_names() -> None:
    assert R.astring("INBOX") == b"INBOX"
    assert R.astring("a]b") == b"a]b"
    assert R.astring("with space") == b'"with space"'
    assert R.astring("") == b'""'
    assert R.astring("NIL") == b'"NIL"'
    assert R.astring("a%b") == b'"a%b"'
    assert R.astring("x{y") == b'"x{y"'
    assert R.mailbox_name("Entwürfe") == b"Entw&APw-rfe"
    assert R.mailbox_name("Tom & Jerry") == b'"Tom &- Jerry"'
    assert R.mailbox_name("Archive/2024") == b"Archive/2024"


def test_nstring_and_flag_lists() -> None:
    assert R.nstring(None) == b"NIL"
    assert R.nstring("x") == b'"x"'
    assert R.flag_list(["\\Seen", "$Work"]) == b"(\\Seen $Work)"
    assert R.flag_list([]) == b"()"
    assert R.sorted_flag_list(["b", "\\Seen", "a", "\\Deleted"]) == b"(\\Deleted \\Seen a b)"


def test_sequence_sets_for_uidplus_and_esearch() -> None:
    assert R.sequence_set([1, 2, 3, 5, 7, 8, 10]) == b"1:3,5,7:8,10"
    assert R.sequence_set([]) == b""
    assert R.sequence_set([4]) == b"4"
    assert R.ranges_set([(1, 3), (5, 5)]) == b"1:3,5"


def test_status_lines() -> None:
    assert R.tagged("a1", "OK", "SELECT completed", "READ-WRITE") == (
        b"a1 OK [READ-WRITE] SELECT completed\r\n")
    assert R.tagged("a2", "NO", "no\r\nsuch") == b"a2 NO no  such\r\n"
    assert R.untagged("3 EXISTS") == b"* 3 EXISTS\r\n"
    assert R.untagged("OK", "Still here", "UIDNEXT 5") == b"* OK [UIDNEXT 5] Still here\r\n"


def test_python_imaplib_reads_what_we_encode() -> None:
    """imaplib's own response parser splits literal-bearing FETCH responses: it must find
    the literal we wrote and the rest of the line after it."""
    value = R.encode([Atom("UID"), 7, Atom("BODY[]"), b"Subject: x\r\n\r\nhi\r\n"])
    line, _, rest = value.partition(b"\r\n")
    match = imaplib.Literal.search(line)  # type: ignore[attr-defined]
    assert match is not None and int(match.group("size")) == len(b"Subject: x\r\n\r\nhi\r\n")
    assert rest.endswith(b")")


def test_sequence_set_resolution() -> None:
    s = SequenceSet.parse("5:2,*,9:*,1")
    assert s.ranges == ((5, 2), (0, 0), (9, 0), (1, 1))
    assert s.uses_star and not SequenceSet.parse("1:3").uses_star
    assert s.resolve(4) == [(1, 9)]  # 9:* with 4 messages is 4:9 (RFC 3501)
    assert s.resolve(20) == [(1, 5), (9, 20)]
    assert s.resolve(0) == [(1, 5)]  # an empty mailbox: ranges with * match nothing
    assert SequenceSet.parse("1:*").resolve(0) == []
    assert list(SequenceSet.parse("3:1,2").numbers(10)) == [1, 2, 3]
    assert SequenceSet.parse("4,1:2").contains(2, 9)
    assert not SequenceSet.parse("4,1:2").contains(3, 9)
    assert SequenceSet.parse("1:7").exceeds(6) and not SequenceSet.parse("1:*").exceeds(6)
    assert str(s) == "5:2,*,9:*,1"


@pytest.mark.parametrize("text", ["", "0", "1:0", "a", "1,", ",1", "1::2", "4294967296", "01"])
def test_sequence_set_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)
