"""Byte transcripts of the sans-I/O SMTP machine: bytes in, exact reply bytes out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from hayate.core.reply import SmtpReply
from hayate.smtp.events import Authenticate, CheckSender, MessageReceived, StartTls
from hayate.smtp.protocol import CLOSED, MachineConfig, SmtpMachine

Make = Callable[..., Any]

MX = MachineConfig(hostname="mx.test")
MX_TLS = MachineConfig(hostname="mx.test", starttls_available=True)
SUB = MachineConfig(
    hostname="mx.test",
    auth_enabled=True,
    auth_requires_tls=True,
    require_auth=True,
    starttls_available=True,
)
SUB_NO_TLS_NEEDED = MachineConfig(
    hostname="mx.test", auth_enabled=True, auth_requires_tls=False, require_auth=True
)

EHLO_MX = (
    b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-ENHANCEDSTATUSCODES\r\n"
    b"250-8BITMIME\r\n250 SMTPUTF8\r\n"
)
MAIL_OK = b"250 2.1.0 Ok\r\n"
RCPT_OK = b"250 2.1.5 Ok\r\n"
GO = b"354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = b"250 2.0.0 Ok: queued as TEST\r\n"
BARE = b"550 5.5.2 bare CR or LF in message not allowed\r\n"

SESSION = (
    b"EHLO client.test\r\n"
    b"MAIL FROM:<a@x.test>\r\n"
    b"RCPT TO:<b@y.test>\r\n"
    b"DATA\r\n"
    b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n"
    b"QUIT\r\n"
)
SESSION_REPLIES = EHLO_MX + MAIL_OK + RCPT_OK + GO + QUEUED + b"221 2.0.0 Bye\r\n"


def plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


# --------------------------------------------------------------------- a whole session


def test_session_transcript(make_driver: Make) -> None:
    d = make_driver()
    assert d.send(SESSION) == SESSION_REPLIES
    assert d.closed == "quit"
    [msg] = d.messages
    assert msg.envelope.sender == "a@x.test"
    assert msg.envelope.recipients == ("b@y.test",)
    assert msg.data == b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"


def test_pipelined_commands_answered_in_order_in_one_write(make_driver: Make) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    m: SmtpMachine = d.m
    batch = (
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<nobody@y.test>\r\n"
        b"RCPT TO:<c@y.test>\r\nDATA\r\n"
    )
    ev = m.feed(batch)
    replies = []
    while ev is not None:  # answer each event, but only collect the output at the end
        d.answer(ev)
        ev = m.next_event()
    replies.append(m.data_to_send())
    assert replies == [MAIL_OK + RCPT_OK + b"550 5.1.1 User unknown\r\n" + RCPT_OK + GO]
    assert d.send(b"x\r\n.\r\n") == QUEUED
    assert d.messages[0].envelope.recipients == ("b@y.test", "c@y.test")


def test_every_split_point_gives_the_same_transcript(make_driver: Make) -> None:
    for cut in range(1, len(SESSION)):
        d = make_driver()
        assert d.send(SESSION[:cut], SESSION[cut:]) == SESSION_REPLIES, cut
        assert [m.data for m in d.messages] == [b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"]


def test_byte_by_byte(make_driver: Make) -> None:
    d = make_driver()
    assert d.send(*(SESSION[i : i + 1] for i in range(len(SESSION)))) == SESSION_REPLIES


def test_helo_is_not_esmtp(make_driver: Make) -> None:
    d = make_driver()
    assert d.send(b"HELO client\r\n") == b"250 mx.test\r\n"
    assert d.m.helo == "client" and not d.m.esmtp


# --------------------------------------------------------------------- EHLO


@pytest.mark.parametrize(
    ("cfg", "tls", "starttls", "auth"),
    [
        (MX, False, False, False),
        (MX_TLS, False, True, False),
        (MX_TLS, True, False, False),
        (SUB, False, True, False),
        (SUB, True, False, True),
        (SUB_NO_TLS_NEEDED, False, False, True),
    ],
)
def test_ehlo_advertises(make_driver: Make, cfg: MachineConfig, tls: bool, starttls: bool,
                         auth: bool) -> None:
    reply = make_driver(cfg, tls=tls).send(b"EHLO c\r\n")
    lines = reply.decode().split("\r\n")[:-1]
    keywords = [line[4:] for line in lines[1:]]
    assert ("STARTTLS" in keywords) == starttls
    assert ("AUTH PLAIN LOGIN" in keywords) == auth
    for needed in ("PIPELINING", "SIZE 36700160", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"):
        assert needed in keywords
    assert not any(k.startswith("CHUNKING") for k in keywords)
    assert all(line.startswith("250-") for line in lines[:-1]) and lines[-1].startswith("250 ")


def test_ehlo_needs_a_name(make_driver: Make) -> None:
    assert make_driver().send(b"EHLO\r\n") == b"501 5.5.4 Syntax: EHLO hostname\r\n"


# --------------------------------------------------------------------- DATA


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"a\r\n..\r\n...x\r\n.\r\n", b"a\r\n.\r\n..x\r\n"),
        (b"..a\r\n..b\r\n.\r\n", b".a\r\n.b\r\n"),
        (b"line\r\n\r\n\r\n.\r\n", b"line\r\n\r\n\r\n"),
        (b"8bit \xc3\xa9\xff\r\n.\r\n", b"8bit \xc3\xa9\xff\r\n"),
    ],
)
def test_dot_unstuffing(make_driver: Make, wire: bytes, message: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(wire) == QUEUED
    assert d.messages[0].data == message


def test_data_end_split_across_reads(make_driver: Make) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(b"body\r", b"\n.", b"\r", b"\nNOOP\r\n") == QUEUED + b"250 2.0.0 Ok\r\n"
    assert d.messages[0].data == b"body\r\n"


def test_commands_pipelined_after_data_end(make_driver: Make) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    out = d.send(
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nm1\r\n.\r\n"
        b"MAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nm2\r\n.\r\nQUIT\r\n"
    )
    assert out == (MAIL_OK + RCPT_OK + GO + QUEUED) * 2 + b"221 2.0.0 Bye\r\n"
    assert [m.data for m in d.messages] == [b"m1\r\n", b"m2\r\n"]
    assert d.messages[1].envelope.sender == ""


@pytest.mark.parametrize(
    "smuggle",
    [
        b"\n.\n",
        b"\r.\r",
        b"\r\n.\n",
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\r",
    ],
)
def test_smuggled_end_of_data_is_not_an_end(make_driver: Make, smuggle: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    out = d.send(
        b"Subject: one\r\n\r\nfirst" + smuggle
        + b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nevil\r\n.\r\nNOOP\r\n"
    )
    # One (rejected) message ended at the real CRLF.CRLF; nothing was parsed as commands.
    assert out == BARE + b"250 2.0.0 Ok\r\n"
    assert d.messages == []
    assert not any(isinstance(e, CheckSender) and e.sender == "evil@x.test" for e in d.events)
    assert d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nok\r\n.\r\n") == (
        MAIL_OK + RCPT_OK + GO + QUEUED
    )


@pytest.mark.parametrize("bad", [b"a\nb\r\n", b"a\rb\r\n", b"\nx\r\n", b"end\r\r\n", b"x\n\r\n"])
def test_bare_cr_or_lf_in_data_rejected_after_end(make_driver: Make, bad: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(b"Subject: x\r\n\r\n" + bad + b".\r\n") == BARE
    assert d.m.rejected == 1 and d.messages == []
    assert d.send(b"RCPT TO:<b@y.test>\r\n") == b"503 5.5.1 Error: need MAIL command\r\n"


def test_message_too_big_is_discarded_then_refused(make_driver: Make) -> None:
    cfg = MachineConfig(hostname="mx.test", max_message_size=1000)
    d = make_driver(cfg)
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    peak = 0
    for _ in range(200):
        assert d.send(b"x" * 78 + b"\r\n") == b""
        peak = max(peak, d.m.buffered)
    assert peak < 1000 + 1000 // 32 + 1024 + 100  # never more than the limit plus a margin
    assert d.send(b".\r\n") == b"552 5.3.4 Error: message size exceeds fixed limit\r\n"
    assert d.messages == []
    assert d.send(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"


def test_message_at_the_limit_is_accepted(make_driver: Make) -> None:
    d = make_driver(MachineConfig(hostname="mx.test", max_message_size=10))
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(b"12345678\r\n.\r\n") == QUEUED
    d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(b"123456789\r\n.\r\n").startswith(b"552 5.3.4")


def test_size_parameter_over_limit(make_driver: Make) -> None:
    d = make_driver(MachineConfig(hostname="mx.test", max_message_size=1000))
    d.send(b"EHLO c\r\n")
    assert d.send(b"MAIL FROM:<a@x.test> SIZE=1001\r\n") == (
        b"552 5.3.4 Error: message size exceeds fixed limit\r\n"
    )
    assert d.send(b"MAIL FROM:<a@x.test> SIZE=1000\r\n") == MAIL_OK


def test_sink_refusal_is_sent_and_transaction_ends(make_driver: Make) -> None:
    d = make_driver(sink_reply=SmtpReply(451, "4.3.0", "Try later"))
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert d.send(b"x\r\n.\r\n") == b"451 4.3.0 Try later\r\n"
    assert d.m.rejected == 1
    assert d.send(b"DATA\r\n") == b"503 5.5.1 Error: need MAIL command\r\n"


# --------------------------------------------------------------------- MAIL / RCPT


def test_mail_parameters_reach_the_envelope(make_driver: Make) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    out = d.send(
        b"MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1 SIZE=10\r\n"
        b"RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y.test\r\n"
        b"DATA\r\nx\r\n.\r\n"
    )
    assert out == MAIL_OK + RCPT_OK + GO + QUEUED
    env = d.messages[0].envelope
    assert (env.body_8bit, env.smtputf8, env.ret, env.envid) == (True, True, "HDRS", "id+2B1")


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"MAIL FROM:<a@x.test> FOO=1", b"555 5.5.4 Error: unsupported option FOO\r\n"),
        (b"MAIL FROM:<a@x.test> BODY=BINARYMIME", b"501 5.5.4 Error: bad BODY parameter value\r\n"),
        (b"MAIL FROM:<a@x.test> SIZE=abc", b"501 5.5.4 Error: bad SIZE parameter value\r\n"),
        (b"MAIL FROM:<a@x.test> RET=ALL", b"501 5.5.4 Error: bad RET parameter value\r\n"),
        (b"MAIL FROM:<a@x.test> SMTPUTF8=yes",
         b"501 5.5.4 Error: bad SMTPUTF8 parameter value\r\n"),
        (b"MAIL FROM:<a@x.test> SIZE=1 SIZE=2", b"501 5.5.4 Error: bad parameter syntax\r\n"),
        (b"MAIL FROM:<a@x.test> =x", b"501 5.5.4 Error: bad parameter syntax\r\n"),
        (b"MAIL FROM <a@x.test>", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (b"MAIL FROM:<a@x.test", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (b"MAIL FROM:<a@x.test>junk", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        (b"MAIL FROM:<a b@x.test>", b"501 5.1.7 Error: bad sender address syntax\r\n"),
        (b"MAIL FROM:<a@>", b"501 5.1.7 Error: bad sender address syntax\r\n"),
        (b"MAIL FROM:<a@-x.test>", b"501 5.1.7 Error: bad sender address syntax\r\n"),
        (b"MAIL FROM:<a..b@x.test>", b"501 5.1.7 Error: bad sender address syntax\r\n"),
        (b"MAIL FROM:<noat>", b"501 5.1.7 Error: bad sender address syntax\r\n"),
        (b"MAIL FROM:<bad@x.test>", b"550 5.7.1 Sender refused\r\n"),
    ],
)
def test_mail_errors(make_driver: Make, command: bytes, reply: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    assert d.send(command + b"\r\n") == reply
    assert d.send(b"MAIL FROM:<a@x.test>\r\n") == MAIL_OK  # the session is still usable


@pytest.mark.parametrize(
    "path",
    [
        b"<>",
        b"<a@x.test>",
        b"a@x.test",
        b" <a@x.test>",
        b'<"a b>c"@x.test>',
        b"<@relay.test,@r2.test:a@x.test>",
        b"<a@[192.0.2.1]>",
        b"<a@[IPv6:2001:db8::1]>",
        b"<first.last+tag@sub.x-y.test>",
    ],
)
def test_mail_accepted_paths(make_driver: Make, path: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    assert d.send(b"MAIL FROM:" + path + b"\r\n") == MAIL_OK


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"RCPT TO:<>", b"501 5.1.3 Error: bad recipient address syntax\r\n"),
        (b"RCPT TO:<b@y..test>", b"501 5.1.3 Error: bad recipient address syntax\r\n"),
        (b"RCPT TO:<b@[300.1.1.1]>", b"501 5.1.3 Error: bad recipient address syntax\r\n"),
        (b"RCPT TO:<b@y.test> XYZ", b"555 5.5.4 Error: unsupported option XYZ\r\n"),
        (b"RCPT TO:<b@y.test> NOTIFY=SOMETIMES",
         b"501 5.5.4 Error: bad NOTIFY parameter value\r\n"),
        (b"RCPT TO:<b@y.test> ORCPT=x", b"501 5.5.4 Error: bad ORCPT parameter value\r\n"),
        (b"RCPT <b@y.test>", b"501 5.5.4 Syntax: RCPT TO:<address>\r\n"),
        (b"RCPT TO:<nobody@y.test>", b"550 5.1.1 User unknown\r\n"),
        (b"RCPT TO:<noenh@y.test>", b"550 5.0.0 no code\r\n"),
        (b"RCPT TO:<Postmaster>", RCPT_OK),
    ],
)
def test_rcpt_replies(make_driver: Make, command: bytes, reply: bytes) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n")
    assert d.send(command + b"\r\n") == reply


def test_too_many_recipients(make_driver: Make) -> None:
    d = make_driver(MachineConfig(hostname="mx.test", max_recipients=2))
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n")
    out = d.send(b"RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\n")
    assert out == RCPT_OK * 2 + b"452 4.5.3 Error: too many recipients\r\n"
    d.send(b"DATA\r\nx\r\n.\r\n")
    assert d.messages[0].envelope.recipients == ("b@y.test", "c@y.test")


def test_smtputf8_addresses(make_driver: Make) -> None:
    d = make_driver()
    d.send(b"EHLO c\r\n")
    utf8 = "jos\u00e9@\u00e9xample.test".encode()
    assert d.send(b"MAIL FROM:<" + utf8 + b">\r\n") == (
        b"553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n"
    )
    assert d.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<" + utf8 + b">\r\n") == MAIL_OK + (
        b"553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n"
    )
    d.send(b"RSET\r\n")
    out = d.send(b"MAIL FROM:<" + utf8 + b"> SMTPUTF8\r\nRCPT TO:<" + utf8 + b">\r\n")
    assert out == MAIL_OK + RCPT_OK
    assert d.send(b"MAIL FROM:<\xff@x.test> SMTPUTF8\r\n") == (
        b"500 5.5.2 Error: invalid UTF-8 in command\r\n"
    )
    assert d.send(b"NOOP \xc3\xa9\r\n") == (
        b"500 5.5.2 Error: non-ASCII characters in command need SMTPUTF8\r\n"
    )


# --------------------------------------------------------------------- sequence and syntax


@pytest.mark.parametrize(
    ("commands", "last_reply"),
    [
        (b"MAIL FROM:<a@x.test>\r\n", b"503 5.5.1 Error: send HELO/EHLO first\r\n"),
        (b"EHLO c\r\nRCPT TO:<b@y.test>\r\n", b"503 5.5.1 Error: need MAIL command\r\n"),
        (b"EHLO c\r\nDATA\r\n", b"503 5.5.1 Error: need MAIL command\r\n"),
        (b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n", b"503 5.5.1 Error: need RCPT command\r\n"),
        (b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nMAIL FROM:<a@x.test>\r\n",
         b"503 5.5.1 Error: nested MAIL command\r\n"),
        (b"EHLO c\r\nMAIL FROM:<bad@x.test>\r\nRCPT TO:<b@y.test>\r\n",
         b"503 5.5.1 Error: need MAIL command\r\n"),
        (b"EHLO c\r\nDATA x\r\n", b"501 5.5.4 Syntax error: no arguments allowed\r\n"),
        (b"RSET x\r\n", b"501 5.5.4 Syntax error: no arguments allowed\r\n"),
        (b"BDAT 10 LAST\r\n", b"500 5.5.2 Error: command not recognized\r\n"),
        (b"\r\n", b"500 5.5.2 Error: bad syntax\r\n"),
        (b"\x00\x01\xff\r\n", b"500 5.5.2 Error: command not recognized\r\n"),
        (b"NOOP\n", b"500 5.5.2 Error: bare CR or LF in command not allowed\r\n"),
        (b"NOOP\rx\r\n", b"500 5.5.2 Error: bare CR or LF in command not allowed\r\n"),
        (b"STARTTLS\r\n", b"502 5.5.1 Error: command not implemented\r\n"),
        (b"AUTH PLAIN\r\n", b"503 5.5.1 Error: authentication not enabled\r\n"),
        (b"VRFY root\r\n",
         b"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"),
        (b"EXPN staff\r\n", b"502 5.5.1 Error: command not implemented\r\n"),
        (b"NOOP anything\r\n", b"250 2.0.0 Ok\r\n"),
        (b"help\r\n", b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY "
         b"STARTTLS AUTH\r\n"),
    ],
)
def test_sequence_and_syntax(make_driver: Make, commands: bytes, last_reply: bytes) -> None:
    d = make_driver()
    out = d.send(commands)
    assert out.endswith(last_reply)
    assert d.send(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"


def test_rset_ends_the_transaction(make_driver: Make) -> None:
    d = make_driver()
    out = d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRSET\r\nRCPT TO:<b@y.test>\r\n")
    assert out.endswith(b"250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n")


def test_line_too_long_is_refused_without_buffering_it(make_driver: Make) -> None:
    d = make_driver(MachineConfig(hostname="mx.test", max_line_length=100))
    assert d.send(b"NOOP " + b"x" * 95 + b"\r\n") == b"250 2.0.0 Ok\r\n"
    assert d.send(b"NOOP " + b"x" * 96 + b"\r\n") == b"500 5.5.2 Error: line too long\r\n"
    for _ in range(50):
        assert d.send(b"y" * 64) == b""
        assert d.m.buffered <= 164
    assert d.send(b"z\r\nNOOP\r\n") == b"500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"


def test_too_many_errors_closes(make_driver: Make) -> None:
    d = make_driver(MachineConfig(hostname="mx.test", max_bad_commands=3))
    out = d.send(b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    unknown = b"500 5.5.2 Error: command not recognized\r\n"
    assert out == unknown * 3 + b"421 4.7.0 mx.test Error: too many errors\r\n"
    assert d.closed == "too many errors"
    assert d.m.mode == CLOSED
    assert d.send(b"NOOP\r\n") == b""


def test_quit_stops_parsing(make_driver: Make) -> None:
    d = make_driver()
    assert d.send(b"QUIT\r\nNOOP\r\n") == b"221 2.0.0 Bye\r\n"
    assert d.closed == "quit"
    assert d.send(b"NOOP\r\n") == b""


def test_close_with_queues_a_final_reply() -> None:
    m = SmtpMachine(MX)
    m.close_with(b"421 4.4.2 mx.test Error: timeout exceeded\r\n")
    assert m.data_to_send() == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    assert m.feed(b"NOOP\r\n") is None and m.data_to_send() == b""


def test_answer_without_pending_event_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        SmtpMachine(MX).sender_checked(None)


# --------------------------------------------------------------------- AUTH


def test_submission_needs_auth_for_mail(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    assert d.send(b"MAIL FROM:<a@x.test>\r\n") == b"530 5.7.0 Authentication required\r\n"


def test_auth_refused_before_tls(make_driver: Make) -> None:
    d = make_driver(SUB)
    d.send(b"EHLO c\r\n")
    assert d.send(f"AUTH PLAIN {plain('user@example.test', 'secret')}\r\n".encode()) == (
        b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    )
    assert not any(isinstance(e, Authenticate) for e in d.events)


def test_auth_plain_initial_response(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    assert d.send(f"AUTH PLAIN {plain('user@example.test', 'secret')}\r\n".encode()) == (
        b"235 2.7.0 Authentication successful\r\n"
    )
    assert d.m.auth_user == "user@example.test"
    assert d.send(b"MAIL FROM:<user@example.test>\r\n") == MAIL_OK
    assert d.send(b"RSET\r\nAUTH PLAIN\r\n").endswith(
        b"503 5.5.1 Error: already authenticated\r\n"
    )


def test_auth_plain_with_continuation_and_authzid(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    assert d.send(b"AUTH PLAIN\r\n") == b"334 \r\n"
    resp = plain("user@example.test", "secret", authzid="user@example.test")
    assert d.send(resp.encode() + b"\r\n") == b"235 2.7.0 Authentication successful\r\n"


def test_auth_plain_foreign_authzid_refused(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    resp = plain("user@example.test", "secret", authzid="boss@example.test")
    assert d.send(f"AUTH PLAIN {resp}\r\n".encode()) == (
        b"535 5.7.8 Authentication credentials invalid\r\n"
    )


def test_auth_login(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    assert d.send(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert d.send(b64("user@example.test") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert d.send(b64("secret") + b"\r\n") == b"235 2.7.0 Authentication successful\r\n"


def test_auth_login_with_initial_username(make_driver: Make) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    assert d.send(b"AUTH LOGIN " + b64("user@example.test") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert d.send(b64("wrong") + b"\r\n") == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert d.m.auth_user is None and d.m.bad_commands == 1


@pytest.mark.parametrize(
    ("lines", "last"),
    [
        ([b"AUTH LOGIN", b"*"], b"501 5.7.0 Authentication aborted\r\n"),
        ([b"AUTH PLAIN", b"*"], b"501 5.7.0 Authentication aborted\r\n"),
        ([b"AUTH PLAIN", b"!!notbase64"], b"501 5.5.2 Error: cannot decode response\r\n"),
        ([b"AUTH PLAIN abc"], b"501 5.5.2 Error: cannot decode response\r\n"),
        ([b"AUTH PLAIN " + b64("no-nuls")], b"535 5.7.8 Authentication credentials invalid\r\n"),
        ([b"AUTH CRAM-MD5"], b"504 5.5.4 Unrecognized authentication type\r\n"),
        ([b"AUTH"], b"501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"),
    ],
)
def test_auth_failures(make_driver: Make, lines: list[bytes], last: bytes) -> None:
    d = make_driver(SUB, tls=True)
    d.send(b"EHLO c\r\n")
    out = d.send(*(line + b"\r\n" for line in lines))
    assert out.endswith(last)
    assert d.m.auth_user is None
    assert d.send(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"  # back in command mode


def test_auth_failures_count_towards_the_error_limit(make_driver: Make) -> None:
    cfg = MachineConfig(hostname="mx.test", auth_enabled=True, auth_requires_tls=False,
                        max_bad_commands=3)
    d = make_driver(cfg)
    d.send(b"EHLO c\r\n")
    bad = f"AUTH PLAIN {plain('user@example.test', 'nope')}\r\n".encode()
    out = d.send(bad * 3)
    assert out.endswith(b"421 4.7.0 mx.test Error: too many errors\r\n")
    assert d.closed == "too many errors"


def test_auth_without_tls_when_allowed(make_driver: Make) -> None:
    d = make_driver(SUB_NO_TLS_NEEDED)
    d.send(b"EHLO c\r\n")
    assert d.send(f"AUTH PLAIN {plain('user@example.test', 'secret')}\r\n".encode()) == (
        b"235 2.7.0 Authentication successful\r\n"
    )


def test_auth_temporary_failure() -> None:
    m = SmtpMachine(SUB, tls=True)
    m.feed(b"EHLO c\r\n")
    ev = m.feed(f"AUTH PLAIN {plain('u@x.test', 'p')}\r\n".encode())
    assert isinstance(ev, Authenticate) and ev.username == "u@x.test" and ev.password == "p"
    m.auth_error(SmtpReply(454, "4.7.0", "Temporary authentication failure"))
    assert m.data_to_send().endswith(b"454 4.7.0 Temporary authentication failure\r\n")


# --------------------------------------------------------------------- STARTTLS


def test_starttls_discards_pipelined_plaintext_and_resets(make_driver: Make) -> None:
    d = make_driver(SUB, auto_tls=False)
    d.send(b"EHLO c\r\n")
    out = d.send(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<b@y.test>\r\n")
    assert out == b"220 2.0.0 Ready to start TLS\r\n"
    starts = [e for e in d.events if isinstance(e, StartTls)]
    assert starts == [StartTls(discarded=len(b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<b@y.test>\r\n"))]
    # Bytes arriving before the adapter reports TLS up wait (they are decrypted TLS data).
    assert d.send(b"EHLO again\r\n") == b""
    d.m.tls_started()
    assert d.m.helo is None and d.m.tls
    ev = d.m.next_event()
    assert ev is None
    reply = d.m.data_to_send()
    assert b"AUTH PLAIN LOGIN" in reply and b"STARTTLS" not in reply
    assert d.send(b"STARTTLS\r\n") == b"554 5.5.1 Error: TLS already active\r\n"


def test_starttls_forgets_helo(make_driver: Make) -> None:
    d = make_driver(MX_TLS)
    d.send(b"EHLO c\r\nSTARTTLS\r\n")
    assert d.send(b"MAIL FROM:<a@x.test>\r\n") == b"503 5.5.1 Error: send HELO/EHLO first\r\n"


def test_starttls_not_inside_a_transaction(make_driver: Make) -> None:
    d = make_driver(MX_TLS)
    d.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n")
    assert d.send(b"STARTTLS\r\n") == b"503 5.5.1 Error: MAIL transaction in progress\r\n"


def test_message_event_carries_unstuffed_data() -> None:
    m = SmtpMachine(MX)
    m.feed(b"EHLO c\r\n")
    ev = m.feed(b"MAIL FROM:<a@x.test>\r\n")
    assert ev == CheckSender("a@x.test")
    m.sender_checked(None)
    m.feed(b"RCPT TO:<b@y.test>\r\n")
    m.recipient_checked(None)
    ev = m.feed(b"DATA\r\n..x\r\n.\r\n")
    assert isinstance(ev, MessageReceived) and ev.data == b".x\r\n"
    assert m.feed(b"NOOP\r\n") is None  # waiting for the sink: nothing parsed
    m.message_handled(SmtpReply(250, "2.0.0", "Ok"))
    assert m.next_event() is None
    assert m.data_to_send().endswith(b"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n")
