"""Malformed commands: each gives BAD (or NO) with a precise text, and the very next command
in the same stream parses normally."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayate.imap.commands import Bad, NeedContinuation, No, ReaderResult, Simple
from hayate.imap.parser import CommandReader

NEXT = b"z NOOP\r\n"


def run(data: bytes, *, max_line: int = 1024, max_literal: int = 4096) -> list[ReaderResult]:
    reader = CommandReader(max_line, max_literal)
    reader.feed(data + NEXT)
    out: list[ReaderResult] = []
    while (result := reader.next()) is not None:
        out.append(result)
    assert out[-1] == Simple("z", "NOOP"), out
    assert reader.buffered == 0
    return out[:-1]


CASES: list[tuple[bytes, str | None, str]] = [
    # tags
    (b"+ NOOP\r\n", None, "invalid tag"),
    (b"a+b NOOP\r\n", None, "invalid tag"),
    (b"* NOOP\r\n", None, "invalid tag"),
    (b"(a) NOOP\r\n", None, "invalid tag"),
    (b' NOOP\r\n', None, "missing tag"),
    (b"a\r\n", "a", "missing command"),
    (b"a \r\n", "a", "missing command"),
    (b"a\tNOOP\r\n", None, "invalid tag"),
    # commands
    (b"a FROB\r\n", "a", "unknown command"),
    (b"a NOOPX\r\n", "a", "unknown command"),
    (b"a NOOP extra\r\n", "a", "unexpected extra arguments"),
    (b"a UID FROB 1\r\n", "a", "unknown UID command FROB"),
    (b"a UID\r\n", "a", "missing UID command"),
    # missing arguments
    (b"a LOGIN\r\n", "a", "missing user name"),
    (b"a LOGIN bob\r\n", "a", "missing password"),
    (b"a SELECT\r\n", "a", "missing mailbox name"),
    (b"a RENAME x\r\n", "a", "missing new mailbox name"),
    (b"a FETCH 1\r\n", "a", "missing fetch items"),
    (b"a FETCH\r\n", "a", "missing sequence set"),
    (b"a STORE 1 +FLAGS\r\n", "a", "missing flags"),
    (b"a COPY 1\r\n", "a", "missing mailbox name"),
    (b"a SEARCH\r\n", "a", "missing search criteria"),
    (b"a SEARCH FROM\r\n", "a", "missing argument of FROM"),
    (b"a SEARCH OR SEEN\r\n", "a", "missing second argument of OR"),
    (b"a STATUS INBOX\r\n", "a", "missing status items"),
    (b"a ENABLE\r\n", "a", "missing capability"),
    (b"a APPEND INBOX\r\n", "a", "missing message"),
    (b"a AUTHENTICATE\r\n", "a", "missing mechanism"),
    # unbalanced parentheses
    (b"a FETCH 1 (FLAGS UID\r\n", "a", "expected a space between fetch items"),
    (b"a FETCH 1 (FLAGS))\r\n", "a", "unbalanced parentheses"),
    (b"a FETCH 1 FLAGS)\r\n", "a", "unbalanced parentheses"),
    (b"a SEARCH (SEEN\r\n", "a", "expected ) to close the search list"),
    (b"a SEARCH SEEN)\r\n", "a", "unbalanced parentheses"),
    (b"a STATUS INBOX (MESSAGES\r\n", "a", "expected a space between status item"),
    (b"a STORE 1 FLAGS (\\Seen\r\n", "a", "expected a space between flags"),
    (b"a SELECT INBOX (CONDSTORE\r\n", "a", "expected a space between select parameters"),
    (b'a ID ("name" "x"\r\n', "a", "expected a space between ID parameters"),
    (b'a LIST (SUBSCRIBED "" *\r\n', "a", "expected selection option"),
    # bad sequence sets
    (b"a FETCH 0 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 1:0 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 1,,2 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 1: FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH :3 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 1:2:3 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH ** FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 4294967296 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH 01 FLAGS\r\n", "a", "invalid sequence set"),
    (b"a FETCH x FLAGS\r\n", "a", "expected a sequence set"),
    (b"a SEARCH $\r\n", "a", "SEARCHRES ($) is not supported"),
    (b"a UID EXPUNGE 1,\r\n", "a", "invalid sequence set"),
    # bad dates
    (b"a SEARCH SINCE 31-Feb-2024\r\n", "a", "invalid date"),
    (b"a SEARCH SINCE 1-Foo-2024\r\n", "a", "invalid month in date"),
    (b"a SEARCH SINCE 2024-01-01\r\n", "a", "invalid date"),
    (b'a SEARCH ON "1-Jan-2024\r\n', "a", "invalid date"),
    (b"a SEARCH BEFORE 1-Jan-24\r\n", "a", "invalid date"),
    (b'a APPEND INBOX "32-Jan-2024 00:00:00 +0000" {1+}\r\nx\r\n', "a", "invalid date-time"),
    (b'a APPEND INBOX "1-Jan-2024 25:00:00 +0000" {1+}\r\nx\r\n', "a", "invalid date-time"),
    (b'a APPEND INBOX "1-Jan-2024 10:00:00" {1+}\r\nx\r\n', "a", "invalid date-time"),
    (b'a APPEND INBOX "1-Jan-2024 10:00:00 +0099" {1+}\r\nx\r\n', "a",
     "invalid zone in date-time"),
    # FETCH items
    (b"a FETCH 1 (FLAGS FOO)\r\n", "a", "unknown fetch item FOO"),
    (b"a FETCH 1 (ALL)\r\n", "a", "ALL must be the only fetch item"),
    (b"a FETCH 1 ()\r\n", "a", "empty fetch item list"),
    (b"a FETCH 1 BODY[FOO]\r\n", "a", "invalid section"),
    (b"a FETCH 1 BODY[0]\r\n", "a", "section part must not be zero"),
    (b"a FETCH 1 BODY[MIME]\r\n", "a", "MIME needs a part number"),
    (b"a FETCH 1 BODY[1.]\r\n", "a", "invalid section"),
    (b"a FETCH 1 BODY[HEADER\r\n", "a", "expected ] after the section"),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "a", "empty header list"),
    (b"a FETCH 1 BODY[HEADER.FIELDS (a:b)]\r\n", "a", "invalid header name"),
    (b"a FETCH 1 BODY[]<0.>\r\n", "a", "invalid partial range"),
    (b"a FETCH 1 BODY[]<x>\r\n", "a", "invalid partial range"),
    (b"a FETCH 1 BODY[]<1.99999999999>\r\n", "a", "invalid partial range"),
    (b"a FETCH 1 BODY.PEEK\r\n", "a", "unknown fetch item BODY.PEEK"),
    (b"a FETCH 1 BINARY[HEADER]\r\n", "a", "expected section part"),
    (b"a FETCH 1 FLAGS (VANISHED)\r\n", "a", "VANISHED needs UID FETCH with CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n", "a",
     "VANISHED needs UID FETCH with CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE x)\r\n", "a", "expected mod-sequence"),
    (b"a FETCH 1 FLAGS (FOO)\r\n", "a", "unknown fetch modifier FOO"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 99999999999999999999)\r\n", "a", "mod-sequence too large"),
    # STORE
    (b"a STORE 1 FLAGS (\\Recent)\r\n", "a", "\\Recent cannot be set"),
    (b"a STORE 1 FLAGS (\\Bogus)\r\n", "a", "invalid system flag \\Bogus"),
    (b"a STORE 1 FLAGS \\*\r\n", "a", "invalid flag"),
    (b"a STORE 1 LABELS (x)\r\n", "a", "unknown store item LABELS"),
    (b"a STORE 1 (UNCHANGEDSINCE) FLAGS x\r\n", "a", "missing mod-sequence"),
    # SEARCH
    (b"a SEARCH FOO\r\n", "a", "unknown search key FOO"),
    (b"a SEARCH LARGER x\r\n", "a", "expected size"),
    (b"a SEARCH RETURN (FOO) ALL\r\n", "a", "unknown search return option FOO"),
    (b"a SEARCH " + b"NOT " * 100 + b"SEEN\r\n", "a", "search nested too deeply"),
    (b"a SEARCH " + b"(" * 100 + b"SEEN" + b")" * 100 + b"\r\n", "a",
     "search nested too deeply"),
    (b"a SEARCH CHARSET US-ASCII SUBJECT \"\xff\"\r\n", "a",
     "search string is not valid UTF-8"),
    (b"a SEARCH CHARSET ISO-2022-JP SUBJECT \"\xff\"\r\n", "a",
     "search string is not valid ISO-2022-JP"),
    (b"a SEARCH SUBJECT \"\xff\"\r\n", "a", "search string is not valid UTF-8"),
    (b"a SEARCH HEADER \"\xff\" x\r\n", "a", "search string is not valid UTF-8"),
    (b"a SORT () UTF-8 ALL\r\n", "a", "invalid sort criteria"),
    (b"a SORT (REVERSE) UTF-8 ALL\r\n", "a", "invalid sort criteria"),
    (b"a SORT (SUBJECT FOO) UTF-8 ALL\r\n", "a", "unknown sort key FOO"),
    (b"a SORT (SUBJECT) UTF-8\r\n", "a", "missing search criteria"),
    # quoted strings and literals
    (b'a LOGIN "bob secret\r\n', "a", "unterminated quoted string"),
    (b'a LOGIN "b\\ob" x\r\n', "a", "invalid escape in quoted string"),
    (b"a LOGIN {x}\r\n", "a", "invalid literal"),
    (b"a LOGIN bob {99999999999999999999999}\r\n", "a", "invalid literal"),
    (b"a LOGIN \"\xff\" x\r\n", "a", "user name is not valid UTF-8"),
    (b"a APPEND INBOX \"hello\"\r\n", "a", "invalid date-time"),
    (b"a APPEND INBOX hello\r\n", "a", "expected the message as a literal"),
    (b"a APPEND INBOX {1+}\r\nx Sent {1+}\r\ny\r\n", "a", "MULTIAPPEND is not supported"),
    (b"a LOGIN ~{1+}\r\nx y\r\n", "a", "expected a space before the password"),
    # mailbox names
    (b"a CREATE &Jjo\r\n", "a", "invalid mailbox name: '&' without a closing '-'"),
    (b"a CREATE &Jjo!-\r\n", "a", "invalid mailbox name: invalid character in modified base64"),
    (b"a CREATE &AGE-\r\n", "a", "invalid mailbox name: printable ASCII must not be "
                                  "base64-encoded"),
    (b"a SELECT \"caf\xc3\xa9\"\r\n", "a", "invalid mailbox name: 8-bit byte in a modified "
                                          "UTF-7 name"),
    (b"a CREATE x (USE)\r\n", "a", "missing special-use list"),
    (b"a CREATE x (FOO (\\Drafts))\r\n", "a", "unknown create parameter FOO"),
    # LIST, STATUS, SELECT parameters
    (b'a LIST (FOO) "" *\r\n', "a", "unknown selection option FOO"),
    (b'a LIST (RECURSIVEMATCH) "" *\r\n', "a", "RECURSIVEMATCH needs another selection option"),
    (b'a LIST "" * RETURN (FOO)\r\n', "a", "unknown return option FOO"),
    (b'a LIST "" * RETURNS (CHILDREN)\r\n', "a", "expected RETURN"),
    (b'a LIST "" ()\r\n', "a", "empty pattern list"),
    (b"a STATUS INBOX (MESSAGES FOO)\r\n", "a", "unknown status item FOO"),
    (b"a STATUS INBOX ()\r\n", "a", "empty status item list"),
    (b"a SELECT INBOX (FOO)\r\n", "a", "unknown select parameter FOO"),
    (b"a SELECT INBOX (QRESYNC (0 1))\r\n", "a", "UIDVALIDITY must not be zero"),
    (b"a SELECT INBOX (QRESYNC (1))\r\n", "a", "missing mod-sequence"),
    # other commands
    (b"a AUTHENTICATE PLAIN AGJvYgB*\r\n", "a", "invalid base64 in the initial response"),
    (b"a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ\r\n", "a", "invalid base64 in the initial response"),
    (b"a ID\r\n", "a", "missing ID parameters"),
    (b"a ID (\"x\")\r\n", "a", "missing ID value"),
    (b'a ID ("' + b"k" * 31 + b'" "v")\r\n', "a", "ID field too long"),
    (b"a SETQUOTA \"\" (STORAGE)\r\n", "a", "missing quota limit"),
    # 8-bit garbage and control characters
    (b"\xff\xfe\xfd\r\n", None, "invalid tag"),
    (b"a \xc3\xa9\r\n", "a", "invalid command"),
    (b"a LOGIN b\xc3\xa9 x\r\n", "a", "expected a space before the password"),
    (b"a NOOP\x00\r\n", "a", "unexpected extra arguments"),
    (b"a NO\rOP\r\n", "a", "unknown command"),
]


@pytest.mark.parametrize(("data", "tag", "text"), CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_malformed_gives_bad_and_the_next_command_parses(
    data: bytes, tag: str | None, text: str
) -> None:
    out = [r for r in run(data) if not isinstance(r, NeedContinuation)]
    assert out == [Bad(tag, text)]


def test_unknown_charset_is_no_not_bad() -> None:
    assert run(b"a UID SEARCH CHARSET X-MARTIAN TEXT x\r\n") == [
        No("a", "unknown charset X-MARTIAN", "BADCHARSET (UTF-8 US-ASCII)")]


def test_line_too_long_while_it_arrives_is_bad_at_once_and_dropped() -> None:
    reader = CommandReader(100, 1000)
    reader.feed(b"a1 SEARCH " + b"X" * 200)
    assert reader.next() == Bad("a1", "line too long")
    assert reader.buffered == 0
    for _ in range(50):  # more of the same line: dropped as it comes, nothing reported
        reader.feed(b"Y" * 1000)
        assert reader.next() is None
        assert reader.buffered == 0
    reader.feed(b" end\r\n" + NEXT)
    assert reader.next() == Simple("z", "NOOP")


def test_line_too_long_complete_in_one_read() -> None:
    assert run(b"a2 NOOP " + b"x" * 2000 + b"\r\n") == [Bad("a2", "line too long")]


def test_command_text_is_limited_across_literals() -> None:
    line = b"a3 SEARCH OR TEXT {1+}\r\nx "
    data = line * 60 + b"ALL\r\n"
    out = run(data, max_line=1024)
    assert Bad("a3", "line too long") in out


def test_huge_synchronizing_literal_is_toobig_and_nothing_more_is_expected() -> None:
    out = run(b"a4 APPEND INBOX {99999999}\r\n", max_literal=1000)
    assert out == [Bad("a4", "literal too big", "TOOBIG")]


def test_huge_literal_plus_is_toobig_and_its_bytes_dropped_as_they_arrive() -> None:
    reader = CommandReader(1024, 1000)
    reader.feed(b"a5 APPEND INBOX {50000+}\r\n")
    assert reader.next() == Bad("a5", "literal too big", "TOOBIG")
    for _ in range(49):
        reader.feed(b"\r\n" + b"x" * 998)  # CRLFs inside the literal are not line ends
        assert reader.next() is None
        assert reader.buffered == 0
    reader.feed(b"y" * 1000 + b" more {3+}\r\nabc\r\n" + NEXT)
    assert reader.next() == Simple("z", "NOOP")


def test_literal_limit_counts_all_literals_of_one_command() -> None:
    out = run(b"a6 LOGIN {600+}\r\n" + b"u" * 600 + b" {600+}\r\n" + b"p" * 600 + b"\r\n",
              max_literal=1000)
    assert out == [Bad("a6", "literal too big", "TOOBIG")]


def test_literal_announced_in_a_broken_command_is_still_framed() -> None:
    out = run(b"a7 FROB {5}\r\nhello\r\n")
    assert out == [NeedContinuation("a7", 5), Bad("a7", "unknown command")]


def test_many_errors_in_a_row_do_not_wedge_the_reader() -> None:
    data = b"".join(b"e%d FROB (\r\n" % i for i in range(200))
    out = run(data)
    assert out == [Bad(f"e{i}", "unknown command") for i in range(200)]


def test_read_line_for_idle_done_and_sasl_answers() -> None:
    reader = CommandReader(64, 1000)
    reader.feed(b"DONE\r\nAGJvYgBw\nz NOOP\r\n")
    assert reader.read_line() == b"DONE"
    assert reader.read_line() == b"AGJvYgBw"
    assert reader.next() == Simple("z", "NOOP")
    assert reader.read_line() is None
    reader.feed(b"x" * 100)
    too_long = reader.read_line()
    assert too_long is not None and len(too_long) == 65
    reader.feed(b"x" * 100 + b"\r\n" + NEXT)
    assert reader.next() == Simple("z", "NOOP")


def test_clear_forgets_partial_input() -> None:
    reader = CommandReader(64, 1000)
    reader.feed(b"a LOGIN {5}\r\n")
    assert isinstance(reader.next(), NeedContinuation)
    reader.clear()
    reader.feed(NEXT)
    assert reader.next() == Simple("z", "NOOP")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_and_a_clean_command_follows(garbage: bytes) -> None:
    reader = CommandReader(256, 512)
    # Literals in garbage may swallow what follows; end them with enough newlines and bytes.
    reader.feed(garbage + b"\r\n" + b"\r\n" * 300)
    for _ in range(1000):
        result = reader.next()
        if result is None:
            break
        assert isinstance(result, (Bad, No, NeedContinuation, *_COMMAND_TYPES))
    reader.clear()
    reader.feed(NEXT)
    assert reader.next() == Simple("z", "NOOP")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    b"a", b" ", b"(", b")", b"{3}", b"{2+}", b"\r\n", b"\"", b"\\", b"FETCH", b"UID", b"1:*",
    b"BODY[", b"]", b"<0.5>", b"SEARCH", b"OR", b"NOT", b"&", b"-", b"\xff", b"*", b"LOGIN",
]), max_size=40))
def test_token_soup_never_raises_and_resyncs(parts: list[bytes]) -> None:
    reader = CommandReader(256, 512)
    reader.feed(b"".join(parts) + b"\r\n" + b"x\r\n" * 10 + b"\r\n")
    for _ in range(1000):
        if reader.next() is None:
            break
    reader.clear()
    reader.feed(NEXT)
    assert reader.next() == Simple("z", "NOOP")


def _command_types() -> tuple[type, ...]:
    from typing import get_args

    from hayate.imap.commands import Command

    return get_args(Command)


_COMMAND_TYPES = _command_types()
