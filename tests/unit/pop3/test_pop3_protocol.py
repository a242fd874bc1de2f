"""Byte transcripts of the sans-I/O POP3 machine: every command, in every state, and the
malformed input a client can send. Events are answered here the way the server answers them
(a password table, message bodies by UID)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayate.pop3 import wire as W
from hayate.pop3.events import Close, Event, Fetch, Login, StartTls, Update
from hayate.pop3.maildrop import Maildrop
from hayate.pop3.protocol import (
    AUTHORIZATION,
    CLOSED,
    SASL,
    TLS,
    TRANSACTION,
    WAIT,
    MachineConfig,
    Pop3Machine,
)

USER, PASSWORD = "bob@hayate.test", "pass word"
UIDVALIDITY = 1700000000
BODIES = {
    3: b"Subject: one\r\n\r\nline 1\r\n.dot line\r\nline 3\r\n",
    7: b"Subject: two\r\nFrom: x\r\n\r\nhello\r\n",
    9: b"Subject: three\r\n\r\n" + b"x" * 100 + b"\r\n",
}


class Session:
    """Drives a machine: ``send`` feeds bytes and answers each event like the server."""

    def __init__(self, *, tls: bool = False, plaintext: bool = True, starttls: bool = True,
                 max_bad: int = 20, max_line: int = 200, locked: bool = False) -> None:
        cfg = MachineConfig(max_line_length=max_line, max_bad_commands=max_bad,
                            plaintext_auth=plaintext, starttls_available=starttls)
        self.m = Pop3Machine(cfg, tls=tls)
        self.locked = locked
        self.expunged: set[int] = set()
        self.events: list[Event] = []
        self.closed: str | None = None

    def send(self, data: bytes) -> bytes:
        out = b""
        ev = self.m.feed(data)
        while ev is not None:
            self.events.append(ev)
            out += self.m.data_to_send()
            if isinstance(ev, Login):
                if (ev.username, ev.password) != (USER, PASSWORD):
                    self.m.login_failed(W.AUTH_FAILED)
                elif self.locked:
                    self.m.login_failed(W.IN_USE, counted=False)
                else:
                    drop = Maildrop(UIDVALIDITY, [(u, len(b)) for u, b in BODIES.items()])
                    self.m.logged_in(ev.username, drop)
            elif isinstance(ev, Fetch):
                self.m.fetched(None if ev.uid in self.expunged else BODIES[ev.uid])
                out += self.m.data_to_send()
                stream = self.m.take_stream()
                if stream is not None:
                    out += b"".join(stream)
            elif isinstance(ev, Update):
                self.m.updated(True)
            elif isinstance(ev, Close):
                self.closed = ev.reason
                return out + self.m.data_to_send()
            elif isinstance(ev, StartTls):
                return out + self.m.data_to_send()
            ev = self.m.next_event()
        return out + self.m.data_to_send()

    def login(self) -> None:
        assert self.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode()) == (
            b"+OK\r\n+OK Logged in.\r\n"
        )


@pytest.fixture
def s() -> Session:
    session = Session()
    session.login()
    return session


# ----------------------------------------------------------------- AUTHORIZATION state


def test_greeting() -> None:
    assert Session().m.greeting() == b"+OK Hayate POP3 ready.\r\n"


def test_capa_before_tls_hides_passwords() -> None:
    s = Session(plaintext=False)
    capa = s.send(b"CAPA\r\n")
    assert capa.startswith(b"+OK\r\n") and capa.endswith(b"\r\n.\r\n")
    assert b"STLS\r\n" in capa and b"USER" not in capa and b"SASL" not in capa
    assert b"TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n" in capa
    assert b"IMPLEMENTATION Hayate\r\n" in capa


def test_capa_over_tls_offers_user_and_sasl_and_no_stls() -> None:
    capa = Session(tls=True, plaintext=False).send(b"capa\r\n")
    assert b"USER\r\n" in capa and b"SASL PLAIN\r\n" in capa and b"STLS" not in capa


def test_user_pass(s: Session) -> None:
    assert s.m.mode == TRANSACTION and s.m.user == USER
    assert s.events == [Login(USER, PASSWORD, "USER")]


def test_password_with_spaces_is_the_rest_of_the_line() -> None:
    s = Session()
    s.send(b"USER u@x\r\nPASS  two  spaces \r\n")
    assert s.events == [Login("u@x", " two  spaces ", "USER")]


def test_wrong_password_then_success() -> None:
    s = Session()
    out = s.send(f"USER {USER}\r\nPASS nope\r\nPASS {PASSWORD}\r\n".encode())
    assert out == (b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
                   b"-ERR No username given.\r\n")
    assert s.m.mode == AUTHORIZATION and s.m.bad_commands == 2
    s.login()


def test_pass_without_user() -> None:
    s = Session()
    assert s.send(b"PASS x\r\n") == b"-ERR No username given.\r\n"
    assert s.send(b"USER\r\n") == b"-ERR No username given.\r\n"
    assert s.send(b"USER   \r\n") == b"-ERR No username given.\r\n"


def test_passwords_refused_before_tls() -> None:
    s = Session(plaintext=False)
    refused = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) " \
              b"connections.\r\n"
    assert s.send(b"USER bob\r\n") == refused
    assert s.send(b"PASS x\r\n") == refused
    assert s.send(b"AUTH PLAIN AGJvYgBw\r\n") == refused
    assert s.send(b"AUTH\r\n") == b"+OK\r\n.\r\n"  # no mechanism usable yet
    assert s.events == [] and s.m.mode == AUTHORIZATION


def test_auth_plain_initial_response() -> None:
    s = Session()
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    assert s.send(b"AUTH PLAIN " + token + b"\r\n") == b"+OK Logged in.\r\n"
    assert s.events == [Login(USER, PASSWORD, "PLAIN")]


def test_auth_plain_continuation_and_authzid() -> None:
    s = Session()
    assert s.send(b"AUTH plain\r\n") == b"+ \r\n"
    assert s.m.mode == SASL
    token = base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode())
    assert s.send(token + b"\r\n") == b"+OK Logged in.\r\n"


def test_auth_plain_failures() -> None:
    s = Session()
    assert s.send(b"AUTH PLAIN\r\n*\r\n") == b"+ \r\n" + W.AUTH_ABORTED
    assert W.AUTH_ABORTED == b"-ERR [AUTH] Authentication aborted by client.\r\n"
    assert s.send(b"AUTH PLAIN !!!\r\n") == W.BAD_BASE64
    assert W.BAD_BASE64 == b"-ERR [AUTH] Invalid base64 data in continued response.\r\n"
    assert s.send(b"AUTH PLAIN\r\nnot base64\r\n") == b"+ \r\n" + W.BAD_BASE64
    other = base64.b64encode(f"admin@x\0{USER}\0{PASSWORD}".encode())  # proxy authorization
    assert s.send(b"AUTH PLAIN " + other + b"\r\n") == W.AUTH_FAILED
    two_parts = base64.b64encode(b"user\0pass")
    assert s.send(b"AUTH PLAIN " + two_parts + b"\r\n") == W.AUTH_FAILED
    wrong = base64.b64encode(f"\0{USER}\0bad".encode())
    assert s.send(b"AUTH PLAIN " + wrong + b"\r\n") == W.AUTH_FAILED
    assert s.send(b"AUTH CRAM-MD5\r\n") == b"-ERR [AUTH] Unsupported authentication mechanism.\r\n"
    assert s.send(b"AUTH PLAIN a b\r\n") == b"-ERR [AUTH] Invalid AUTH arguments.\r\n"
    assert s.send(b"AUTH\r\n") == b"+OK\r\nPLAIN\r\n.\r\n"
    assert s.m.mode == AUTHORIZATION and s.m.bad_commands == 8


def test_auth_plain_empty_initial_response_is_equals_sign() -> None:
    s = Session()
    assert s.send(b"AUTH PLAIN =\r\n") == W.AUTH_FAILED  # empty: no user
    assert s.m.mode == AUTHORIZATION


def test_locked_maildrop_is_in_use_and_not_a_bad_command() -> None:
    s = Session(locked=True)
    out = s.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
    assert out == b"+OK\r\n-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    assert s.m.mode == AUTHORIZATION and s.m.bad_commands == 0


@pytest.mark.parametrize("command", [b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"RSET",
                                     b"TOP 1 1", b"UIDL", b"NOOP"])
def test_transaction_commands_before_login(command: bytes) -> None:
    s = Session()
    assert s.send(command + b"\r\n") == b"-ERR Unknown command (log in first).\r\n"
    assert s.events == []


def test_unknown_and_apop_and_empty_lines() -> None:
    s = Session()
    assert s.send(b"HELO x\r\n") == b"-ERR Unknown command.\r\n"
    assert s.send(b"\r\n") == b"-ERR Unknown command.\r\n"
    assert s.send(b"APOP bob 0123456789abcdef0123456789abcdef\r\n") == b"-ERR APOP not enabled.\r\n"


def test_quit_in_authorization() -> None:
    s = Session()
    assert s.send(b"QUIT\r\n") == b"+OK Logging out.\r\n"
    assert s.closed == "quit" and s.m.mode == CLOSED
    assert s.send(b"NOOP\r\n") == b""  # input after the end is ignored


# ----------------------------------------------------------------- STLS


def test_stls_discards_pipelined_plaintext() -> None:
    s = Session(plaintext=False)
    assert s.send(b"STLS\r\nUSER injected\r\n") == b"+OK Begin TLS negotiation now.\r\n"
    assert s.events == [StartTls(len(b"USER injected\r\n"))]
    assert s.m.mode == TLS
    s.m.tls_started()
    assert s.m.mode == AUTHORIZATION and s.m.tls
    assert s.send(b"PASS x\r\n") == b"-ERR No username given.\r\n"  # USER was discarded


def test_stls_refusals() -> None:
    assert Session(tls=True).send(b"STLS\r\n") == b"-ERR TLS is already active.\r\n"
    assert Session(starttls=False).send(b"STLS\r\n") == b"-ERR TLS support isn't enabled.\r\n"
    assert Session().send(b"STLS now\r\n") == b"-ERR This command takes no arguments.\r\n"
    s = Session()
    s.login()
    assert s.send(b"STLS\r\n") == b"-ERR Already logged in.\r\n"


def test_tls_started_only_after_stls() -> None:
    with pytest.raises(RuntimeError):
        Session().m.tls_started()


# ----------------------------------------------------------------- TRANSACTION state


def test_stat_list_uidl(s: Session) -> None:
    sizes = [len(b) for b in BODIES.values()]
    assert s.send(b"STAT\r\n") == f"+OK 3 {sum(sizes)}\r\n".encode()
    assert s.send(b"LIST\r\n") == (
        f"+OK 3 messages:\r\n1 {sizes[0]}\r\n2 {sizes[1]}\r\n3 {sizes[2]}\r\n.\r\n".encode()
    )
    assert s.send(b"LIST 2\r\n") == f"+OK 2 {sizes[1]}\r\n".encode()
    assert s.send(b"UIDL\r\n") == (
        b"+OK\r\n1 000000036553F100\r\n2 000000076553F100\r\n3 000000096553F100\r\n.\r\n"
    )
    assert s.send(b"UIDL 3\r\n") == b"+OK 3 000000096553F100\r\n"


def test_retr_stuffs_and_sizes_match(s: Session) -> None:
    out = s.send(b"RETR 1\r\n")
    body = BODIES[3]
    assert out == (f"+OK {len(body)} octets\r\n".encode()
                   + body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    assert s.m.maildrop is not None and s.m.maildrop.seen_uids() == [3]


def test_top(s: Session) -> None:
    assert s.send(b"TOP 1 0\r\n") == b"+OK\r\nSubject: one\r\n\r\n.\r\n"
    assert s.send(b"TOP 1 2\r\n") == b"+OK\r\nSubject: one\r\n\r\nline 1\r\n..dot line\r\n.\r\n"
    assert s.send(b"TOP 2 100\r\n") == b"+OK\r\n" + BODIES[7] + b".\r\n"
    assert s.m.maildrop is not None and s.m.maildrop.seen_uids() == []  # TOP does not mark


def test_dele_hides_the_message_and_rset_restores_it(s: Session) -> None:
    assert s.send(b"DELE 2\r\n") == b"+OK Marked to be deleted.\r\n"
    assert s.send(b"STAT\r\n") == f"+OK 2 {len(BODIES[3]) + len(BODIES[9])}\r\n".encode()
    assert s.send(b"LIST\r\n").startswith(b"+OK 2 messages:\r\n1 ")
    assert b"\r\n2 " not in s.send(b"LIST\r\n")
    assert b"\r\n2 " not in s.send(b"UIDL\r\n")
    for command in (b"RETR 2", b"DELE 2", b"LIST 2", b"UIDL 2", b"TOP 2 1"):
        assert s.send(command + b"\r\n") == b"-ERR Message is deleted.\r\n"
    assert s.send(b"RSET\r\n") == b"+OK\r\n"
    assert s.send(b"STAT\r\n").startswith(b"+OK 3 ")
    assert s.send(b"LIST 2\r\n") == f"+OK 2 {len(BODIES[7])}\r\n".encode()


@pytest.mark.parametrize(("command", "reply"), [
    (b"RETR", b"-ERR Message number expected.\r\n"),
    (b"RETR 0", b"-ERR There's no message 0.\r\n"),
    (b"RETR 4", b"-ERR There's no message 4.\r\n"),
    (b"RETR -1", b"-ERR Invalid message number: -1\r\n"),
    (b"RETR one", b"-ERR Invalid message number: one\r\n"),
    (b"RETR 1x", b"-ERR Invalid message number: 1x\r\n"),
    (b"RETR 99999999999", b"-ERR Message number too large: 99999999999\r\n"),
    (b"RETR \xd9\xa1", b"-ERR Invalid message number: ?\r\n"),  # an Arabic-Indic digit
    (b"RETR 1 2", b"-ERR Noise after message number: 2\r\n"),
    (b"DELE", b"-ERR Message number expected.\r\n"),
    (b"DELE 9", b"-ERR There's no message 9.\r\n"),
    (b"LIST x", b"-ERR Invalid message number: x\r\n"),
    (b"LIST 1 1", b"-ERR Noise after message number: 1\r\n"),
    (b"UIDL 5", b"-ERR There's no message 5.\r\n"),
    (b"TOP", b"-ERR TOP needs a message number and a line count.\r\n"),
    (b"TOP 1", b"-ERR TOP needs a message number and a line count.\r\n"),
    (b"TOP 1 2 3", b"-ERR TOP needs a message number and a line count.\r\n"),
    (b"TOP 1 -2", b"-ERR Invalid size: -2\r\n"),
    (b"TOP 1 99999999999", b"-ERR Size too large: 99999999999\r\n"),
    (b"TOP 8 1", b"-ERR There's no message 8.\r\n"),
    (b"STAT 1", b"-ERR This command takes no arguments.\r\n"),
    (b"NOOP x", b"-ERR This command takes no arguments.\r\n"),
    (b"RSET all", b"-ERR This command takes no arguments.\r\n"),
    (b"USER bob", b"-ERR Already logged in.\r\n"),
    (b"PASS x", b"-ERR Already logged in.\r\n"),
    (b"AUTH PLAIN", b"-ERR Already logged in.\r\n"),
    (b"XYZZY", b"-ERR Unknown command.\r\n"),
    (b"LAST", b"-ERR Unknown command.\r\n"),
])
def test_bad_commands_in_transaction(s: Session, command: bytes, reply: bytes) -> None:
    assert s.send(command + b"\r\n") == reply
    assert s.m.bad_commands == 1 and s.m.mode == TRANSACTION
    assert s.events == [Login(USER, PASSWORD, "USER")]  # nothing reached the store
    assert s.send(b"NOOP\r\n") == b"+OK\r\n"  # still healthy


def test_commands_are_case_insensitive(s: Session) -> None:
    assert s.send(b"stat\r\nNoOp\r\nlist 1\r\n").count(b"+OK") == 3


def test_message_expunged_by_another_session(s: Session) -> None:
    s.expunged.add(7)
    assert s.send(b"RETR 2\r\n") == b"-ERR Message 2 expunged.\r\n"
    assert s.m.bad_commands == 0 and s.m.mode == TRANSACTION
    assert s.m.maildrop is not None and s.m.maildrop.seen_uids() == []


def test_quit_without_changes_needs_no_update(s: Session) -> None:
    assert s.send(b"TOP 1 1\r\nQUIT\r\n").endswith(b"+OK Logging out.\r\n")
    assert not any(isinstance(ev, Update) for ev in s.events) and s.closed == "quit"


def test_quit_carries_out_deletes_and_seen_marks(s: Session) -> None:
    out = s.send(b"RETR 1\r\nRETR 2\r\nDELE 2\r\nDELE 3\r\nQUIT\r\n")
    assert out.endswith(b"+OK Logging out, messages deleted.\r\n")
    assert s.events[-2:] == [Update(deleted=(7, 9), seen=(3,)), Close("quit")]


def test_quit_after_rset_deletes_nothing(s: Session) -> None:
    out = s.send(b"RETR 1\r\nDELE 1\r\nRSET\r\nQUIT\r\n")
    assert out.endswith(b"+OK\r\n+OK Logging out.\r\n")
    assert not any(isinstance(ev, Update) for ev in s.events)


def test_failed_update_says_so() -> None:
    s = Session()
    s.login()
    ev = s.m.feed(b"DELE 1\r\nQUIT\r\n")
    assert isinstance(ev, Update) and s.m.mode == WAIT
    s.m.updated(False)
    assert s.m.data_to_send().endswith(
        b"-ERR [SYS/TEMP] Storage error during logout, nothing was deleted.\r\n")
    assert s.m.next_event() == Close("update failed")


def test_capa_in_transaction(s: Session) -> None:
    capa = s.send(b"CAPA\r\n")
    assert b"UIDL\r\n" in capa and b"STLS" not in capa


# ----------------------------------------------------------------- framing and limits


def test_pipelined_commands_answered_in_order(s: Session) -> None:
    out = s.send(b"NOOP\r\nLIST 1\r\nRETR 2\r\nUIDL 2\r\nSTAT\r\n")
    assert out.startswith(b"+OK\r\n+OK 1 ")
    assert out.index(b"Subject: two") < out.index(b"+OK 2 000000076553F100")
    assert out.endswith(f"+OK 3 {sum(len(b) for b in BODIES.values())}\r\n".encode())


def test_bytes_split_anywhere() -> None:
    s = Session()
    data = f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\n".encode()
    out = b"".join(s.send(data[i : i + 1]) for i in range(len(data)))
    assert out.startswith(b"+OK\r\n+OK Logged in.\r\n+OK 3 ")


def test_bare_lf_lines_are_accepted() -> None:
    s = Session()
    assert s.send(f"USER {USER}\nPASS {PASSWORD}\n".encode()) == b"+OK\r\n+OK Logged in.\r\n"


def test_over_long_line_is_refused_and_the_session_goes_on() -> None:
    s = Session(max_line=50)
    out = s.send(b"USER " + b"a" * 500)
    assert out == b""  # discarded as it arrives
    assert s.send(b"a" * 500 + b"\r\nNOOP\r\n") == (
        b"-ERR Input line too long.\r\n-ERR Unknown command (log in first).\r\n"
    )
    assert s.send(b"USER " + b"b" * 60 + b"\r\n") == b"-ERR Input line too long.\r\n"
    s.login()


def test_over_long_sasl_response_leaves_sasl() -> None:
    s = Session(max_line=50)
    assert s.send(b"AUTH PLAIN\r\n" + b"A" * 80 + b"\r\n") == (
        b"+ \r\n-ERR Input line too long.\r\n"
    )
    assert s.m.mode == AUTHORIZATION


def test_nul_cr_and_invalid_utf8_are_refused() -> None:
    s = Session()
    assert s.send(b"USER a\0b\r\n") == b"-ERR Invalid characters in command.\r\n"
    assert s.send(b"USER a\rb\r\n") == b"-ERR Invalid characters in command.\r\n"
    assert s.send(b"USER \xff\xfe\r\n") == b"-ERR Invalid characters in command.\r\n"
    assert s.send("USER jösé@hayate.test\r\n".encode()) == b"+OK\r\n"


def test_too_many_bad_commands_closes() -> None:
    s = Session(max_bad=3)
    out = s.send(b"X\r\nY\r\nZ\r\nNOOP\r\n")
    assert out == b"-ERR Unknown command.\r\n" * 3 + b"-ERR Too many bad commands.\r\n"
    assert s.closed == "too many errors" and s.m.mode == CLOSED


def test_wrong_passwords_count_towards_the_limit() -> None:
    s = Session(max_bad=2)
    s.send(b"USER a\r\nPASS b\r\nUSER a\r\nPASS c\r\n")
    assert s.closed == "too many errors"


def test_close_with_stops_parsing(s: Session) -> None:
    s.m.close_with(W.TIMEOUT)
    assert s.m.data_to_send() == b"-ERR Disconnected for inactivity.\r\n"
    assert s.send(b"STAT\r\n") == b""


def test_answers_out_of_turn_are_errors() -> None:
    s = Session()
    with pytest.raises(RuntimeError):
        s.m.fetched(b"x")
    with pytest.raises(RuntimeError):
        s.m.logged_in(USER, Maildrop(1, []))


def test_big_message_is_left_as_a_stream() -> None:
    s = Session()
    s.login()
    big = b"Subject: big\r\n\r\n" + b".line\r\n" * 50_000
    ev = s.m.feed(b"RETR 1\r\nNOOP\r\n")
    assert isinstance(ev, Fetch)
    s.m.fetched(big)
    head = s.m.data_to_send()
    assert head == f"+OK {len(BODIES[3])} octets\r\n".encode()  # the size LIST showed
    stream = s.m.take_stream()
    assert stream is not None
    pieces = list(stream)
    assert len(pieces) > 2 and max(len(p) for p in pieces) <= 2 * W.CHUNK
    assert b"".join(pieces) == b"Subject: big\r\n\r\n" + b"..line\r\n" * 50_000 + b".\r\n"
    assert s.m.next_event() is None and s.m.data_to_send() == b"+OK\r\n"  # then NOOP


def test_empty_maildrop() -> None:
    s = Session()
    ev = s.m.feed(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
    assert isinstance(ev, Login)
    s.m.logged_in(USER, Maildrop(5, []))
    assert s.send(b"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n") == (
        b"+OK\r\n+OK Logged in.\r\n+OK 0 0\r\n+OK 0 messages:\r\n.\r\n+OK\r\n.\r\n"
        b"-ERR There's no message 1.\r\n"
    )


_WORDS = st.sampled_from([b"USER", b"PASS", b"AUTH", b"STLS", b"CAPA", b"STAT", b"LIST",
                          b"RETR", b"DELE", b"RSET", b"TOP", b"UIDL", b"NOOP", b"APOP", b"X"])
_ARGS = st.lists(st.one_of(st.sampled_from([b"1", b"2", b"3", b"0", b"-1", b"PLAIN", b"*",
                                            b"=", b"99999999999"]),
                           st.binary(max_size=12)), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_WORDS, _ARGS), max_size=25), st.booleans())
def test_any_command_sequence_keeps_the_machine_sound(
        commands: list[tuple[bytes, list[bytes]]], logged_in: bool) -> None:
    s = Session(max_bad=1000)
    if logged_in:
        s.login()
    for verb, args in commands:
        line = b" ".join([verb, *args]).replace(b"\n", b"").replace(b"\r", b"")
        out = s.send(line + b"\r\n")
        if s.m.mode == TLS:
            s.m.tls_started()
        assert s.m.mode in (AUTHORIZATION, SASL, TRANSACTION, CLOSED)
        assert out == b"" or out[:1] in (b"+", b"-")  # every answer starts with a status
    if s.m.mode == SASL:
        assert s.send(b"*\r\n") == W.AUTH_ABORTED
    if s.m.mode != CLOSED:
        assert s.send(b"QUIT\r\n").startswith(b"+OK Logging out")
    assert s.m.mode == CLOSED
