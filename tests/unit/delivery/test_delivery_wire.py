"""The sans-I/O SMTP client wire format: reply parsing, EHLO, commands, dot-stuffing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hayate.core.reply import SmtpReply
from hayate.delivery.wire import (
    MAX_REPLY_LINE,
    OutboundMessage,
    ReplyParser,
    ReplySyntaxError,
    dot_stuff,
    mail_command,
    parse_ehlo,
    rcpt_command,
    size_limit,
    xtext,
)


def parse_all(data: bytes) -> list[SmtpReply]:
    return ReplyParser().feed(data)


def test_single_line_reply_with_enhanced_code() -> None:
    assert parse_all(b"250 2.1.0 Ok\r\n") == [SmtpReply(250, "2.1.0", "Ok")]


def test_reply_without_enhanced_code() -> None:
    assert parse_all(b"354 End data with <CR><LF>.<CR><LF>\r\n") == [
        SmtpReply(354, "", "End data with <CR><LF>.<CR><LF>")
    ]


def test_enhanced_code_of_another_class_stays_in_the_text() -> None:
    # "250 5.0.0 x" is nonsense: the first digit must match the reply's class.
    assert parse_all(b"250 5.0.0 odd\r\n") == [SmtpReply(250, "", "5.0.0 odd")]


def test_multi_line_reply_strips_the_enhanced_code_of_each_line() -> None:
    data = (
        b"550-5.1.1 The email account does not exist.\r\n"
        b"550-5.1.1 Please try\r\n"
        b"550 5.1.1 again.\r\n"
    )
    [reply] = parse_all(data)
    assert reply.code == 550 and reply.enhanced == "5.1.1"
    assert reply.text == "The email account does not exist.\nPlease try\nagain."


def test_bare_code_and_empty_last_line() -> None:
    assert parse_all(b"250\r\n") == [SmtpReply(250, "", "")]
    [ehlo] = parse_all(b"250-smtp-sink\r\n250-PIPELINING\r\n250 \r\n")
    assert ehlo.text == "smtp-sink\nPIPELINING\n"


def test_replies_split_anywhere_and_pipelined() -> None:
    stream = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 <x@y>: no\r\n354 go\r\n"
    parser = ReplyParser()
    got: list[SmtpReply] = []
    for i in range(len(stream)):
        got.extend(parser.feed(stream[i : i + 1]))
    assert [r.code for r in got] == [250, 250, 554, 354]
    assert got[2] == SmtpReply(554, "5.7.1", "<x@y>: no")
    assert not parser.pending


def test_bare_lf_line_ends_are_accepted() -> None:
    assert parse_all(b"250 ok\n221 bye\n") == [SmtpReply(250, "", "ok"), SmtpReply(221, "", "bye")]


def test_pending_partial_reply() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250-first\r\n250 sec") == []
    assert parser.pending
    assert parser.feed(b"ond\r\n") == [SmtpReply(250, "", "first\nsecond")]


@pytest.mark.parametrize(
    "garbage",
    [b"hello\r\n", b"25 short\r\n", b"250xbad separator\r\n", b"250-a\r\n251 b\r\n"],
)
def test_garbage_is_a_syntax_error(garbage: bytes) -> None:
    with pytest.raises(ReplySyntaxError):
        parse_all(garbage)


def test_endless_line_is_refused() -> None:
    with pytest.raises(ReplySyntaxError):
        ReplyParser().feed(b"250 " + b"x" * (MAX_REPLY_LINE + 10))


def test_non_utf8_text_does_not_break_parsing() -> None:
    [reply] = parse_all(b"550 5.7.1 caf\xe9\r\n")
    assert reply.code == 550 and reply.text.startswith("caf")


replies = st.builds(
    SmtpReply,
    st.integers(200, 599),
    st.sampled_from(["", "2.0.0", "4.7.1", "5.1.1"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip),
)


@given(st.lists(replies, min_size=1, max_size=6), st.data())
def test_rendered_replies_parse_back_whatever_the_chunking(
    sent: list[SmtpReply], data: st.DataObject
) -> None:
    # An enhanced code only survives when it matches the class of the reply code.
    expected = [
        r if not r.enhanced or r.enhanced[0] == str(r.code)[0] else SmtpReply(r.code, "", "")
        for r in sent
    ]
    stream = b"".join(r.render() for r in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = ReplyParser()
    got: list[SmtpReply] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got.extend(parser.feed(stream[start:cut]))
        start = cut
    assert [r.code for r in got] == [r.code for r in sent]
    for g, e, s in zip(got, expected, sent, strict=True):
        if e.enhanced:
            assert (g.enhanced, g.text) == (e.enhanced, s.text)
        else:
            assert g.code == s.code


def test_parse_ehlo() -> None:
    [reply] = parse_all(
        b"250-mx.example.net Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-8bitmime\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
    )
    ext = parse_ehlo(reply)
    assert ext == {
        "PIPELINING": "",
        "SIZE": "10240000",
        "8BITMIME": "",
        "AUTH": "PLAIN LOGIN",
        "STARTTLS": "",
    }
    assert size_limit(ext) == 10240000
    assert size_limit({"SIZE": ""}) == 0
    assert size_limit({}) == 0


def message(**kw: object) -> OutboundMessage:
    return OutboundMessage.build("a@example.org", b"x" * 10 + b"\r\n", **kw)  # type: ignore[arg-type]


def test_mail_command_parameters_follow_the_server() -> None:
    full = {"SIZE": "1000", "8BITMIME": "", "DSN": "", "SMTPUTF8": ""}
    msg = message(body_8bit=True, smtputf8=True, envid="id+1=x")
    assert mail_command(msg, full) == (
        b"MAIL FROM:<a@example.org> SIZE=12 BODY=8BITMIME SMTPUTF8 ENVID=id+2B1+3Dx\r\n"
    )
    assert mail_command(msg, {}) == b"MAIL FROM:<a@example.org> SMTPUTF8\r\n"
    assert mail_command(message(), full) == b"MAIL FROM:<a@example.org> SIZE=12\r\n"
    bounce = OutboundMessage.build("", b"x\r\n")
    assert mail_command(bounce, {}) == b"MAIL FROM:<>\r\n"


def test_rcpt_command_utf8() -> None:
    assert rcpt_command("josé@example.net") == "RCPT TO:<josé@example.net>\r\n".encode()


def test_xtext() -> None:
    assert xtext("plain") == "plain"
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"
    assert xtext("é") == "+C3+A9"


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.\r\n..b\r\n", b"a\r\n..\r\n...b\r\n.\r\n"),
        (b"no final newline", b"no final newline\r\n.\r\n"),
        (b"ends in CR\r", b"ends in CR\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"bare\n.lf\r\n", b"bare\n..lf\r\n.\r\n"),
    ],
)
def test_dot_stuff(data: bytes, wire: bytes) -> None:
    assert dot_stuff(data) == wire


def unstuff(wire: bytes) -> bytes:
    """What a receiving server does (RFC 5321 4.5.2), for CRLF-only text."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    lines = wire.split(b"\r\n")[:-2]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


@given(st.lists(st.sampled_from([b"", b".", b"..", b"x", b".x", b"a.b", b"\xff\x00"]), max_size=8))
def test_dot_stuffing_round_trips(lines: list[bytes]) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    wire = dot_stuff(data)
    assert b"\r\n.\r\n" not in wire[:-3]  # the only end-of-data mark is the last one
    assert unstuff(wire) == data
