"""Fuzzing the sans-I/O SMTP machine with hypothesis.

Properties: no input raises; every reply line is well formed and every 4xx/5xx carries an
enhanced status code; how the bytes are cut into reads never changes the replies or the
messages (except around STARTTLS, whose defence depends on what came in the same read).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hayate.smtp.protocol import MachineConfig

Make = Callable[..., Any]

CFGS = [
    MachineConfig(hostname="mx.test", max_line_length=64, max_message_size=300,
                  max_bad_commands=1000, max_recipients=3),
    MachineConfig(hostname="mx.test", auth_enabled=True, auth_requires_tls=False,
                  require_auth=True, starttls_available=True, max_bad_commands=1000),
]
# Without STARTTLS: its defence (drop what followed it in the same read) depends on the cuts.
SPLIT_CFGS = [
    CFGS[0],
    MachineConfig(hostname="mx.test", auth_enabled=True, auth_requires_tls=False,
                  require_auth=True, max_bad_commands=1000),
]

FRAGMENTS = [
    b"EHLO c\r\n", b"HELO c\r\n", b"MAIL FROM:<a@x.test>\r\n", b"MAIL FROM:<>\r\n",
    b"MAIL FROM:<a@x.test> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n", b"RCPT TO:<b@y.test>\r\n",
    b"RCPT TO:<nobody@y.test>\r\n", b"DATA\r\n", b"RSET\r\n", b"NOOP\r\n", b"QUIT\r\n",
    b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n",
    b"AUTH PLAIN AHVzZXJAZXhhbXBsZS50ZXN0AHNlY3JldA==\r\n",
    b"dXNlckBleGFtcGxlLnRlc3Q=\r\n", b"c2VjcmV0\r\n", b"*\r\n", b".\r\n", b"..\r\n", b"\r\n.\r\n",
    b"\r\n", b"\n", b"\r", b".", b"\n.\n", b"\r.\r", b"\xc3\xa9", b"\xff\x00", b"x" * 70,
]

smtpish = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=40)), max_size=40
).map(b"".join)

REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$")
ENHANCED = re.compile(rb"^[245]\.\d{1,3}\.\d{1,3} ")


def check_replies(out: bytes) -> None:
    assert out == b"" or out.endswith(b"\r\n")
    for line in out.split(b"\r\n")[:-1]:
        match = REPLY_LINE.match(line)
        assert match is not None, line
        code = int(match.group(1))
        assert 200 <= code < 600
        if code >= 400:
            assert ENHANCED.match(match.group(3)), line


def cuts(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), points=st.lists(st.integers(0, 10_000), max_size=8),
       which=st.integers(0, 1))
def test_random_bytes_never_raise(make_driver: Make, data: bytes, points: list[int],
                                  which: int) -> None:
    d = make_driver(CFGS[which])
    check_replies(d.send(*cuts(data, points)))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=smtpish, points=st.lists(st.integers(0, 10_000), max_size=10),
       which=st.integers(0, 1))
def test_splitting_never_changes_the_outcome(make_driver: Make, data: bytes,
                                             points: list[int], which: int) -> None:
    whole = make_driver(SPLIT_CFGS[which])
    split = make_driver(SPLIT_CFGS[which])
    out_whole = whole.send(data)
    out_split = split.send(*cuts(data, points))
    check_replies(out_whole)
    assert out_split == out_whole
    assert [m.data for m in split.messages] == [m.data for m in whole.messages]
    assert [m.envelope for m in split.messages] == [m.envelope for m in whole.messages]
    for msg in whole.messages:  # what reaches the sink is clean CRLF text
        assert msg.data.count(b"\n") == msg.data.count(b"\r\n") == msg.data.count(b"\r")
        assert b"\r\n.\r\n" not in b"\r\n" + msg.data
