"""The sans-I/O POP3 server: bytes in, reply bytes and events out; no sockets, no store.

States (``mode``): ``AUTHORIZATION`` (before login), ``SASL`` (AUTH PLAIN waits for its
base64 response line), ``TRANSACTION`` (logged in, the maildrop is open), ``WAIT`` (an event
is with the adapter; bytes are buffered, nothing is parsed), ``TLS`` (STLS answered: bytes
that followed it in the same read were discarded, later bytes are decrypted ones and wait
for ``tls_started``), ``CLOSED`` (input is ignored). RFC 1939's UPDATE state is the
:class:`~hayate.pop3.events.Update` event after QUIT.

Strategies:
- PIPELINING (RFC 2449): ``feed`` parses every complete line in the buffer in order and
  queues the replies; the adapter writes them with one ``data_to_send``. An adapter that
  paces a client which pipelines without reading uses ``receive`` (buffer only) and
  ``next_event(limit)`` (at most ``limit`` lines, then None with ``line_ready`` still
  true). A RETR/TOP answer longer than one chunk is left as a lazy ``take_stream``
  iterator the adapter drains with backpressure before it asks for the next event.
- Lines end in CRLF or a bare LF. A line longer than ``max_line_length`` is discarded as it
  arrives and answered ``-ERR Input line too long.``; the session goes on.
- Passwords (USER/PASS, AUTH PLAIN) only once TLS is up unless ``plaintext_auth``: before
  that CAPA hides USER and SASL and both commands get ``-ERR [AUTH] Plaintext
  authentication disallowed…`` (Dovecot's disable_plaintext_auth).
- Every -ERR for a bad command (syntax, state, unknown message, failed login) is counted;
  at ``max_bad_commands`` the machine says ``-ERR Too many bad commands.`` and closes.
  A message expunged by another session since login (``-ERR Message N expunged.``) and a
  maildrop locked by another session are not the client's fault and are not counted.
- Replies follow Dovecot's wording (see ``hayate.pop3.wire``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hayate.core.sasl import decode_response, parse_plain
from hayate.pop3 import wire as W
from hayate.pop3.events import Close, Event, Fetch, Login, StartTls, Update
from hayate.pop3.maildrop import Maildrop

AUTHORIZATION, SASL, TRANSACTION, WAIT, TLS, CLOSED = range(6)
_MAX_NUMBER_DIGITS = 10
_TRANSACTION_ONLY = frozenset(
    {b"STAT", b"LIST", b"RETR", b"DELE", b"RSET", b"TOP", b"UIDL", b"NOOP", b"LAST"}
)
_AUTHORIZATION_ONLY = frozenset({b"USER", b"PASS", b"AUTH", b"APOP", b"STLS"})


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """What one listener allows; built once per listener by the adapter."""

    max_line_length: int = 4096
    max_bad_commands: int = 20
    plaintext_auth: bool = False  # passwords allowed before TLS
    starttls_available: bool = False  # a TLS context exists and TLS is not implicit


class Pop3Machine:
    """One POP3 session's protocol state. See the module docstring for the states."""

    __slots__ = (
        "_buf", "_close", "_fetching", "_out", "_pos", "_skipping", "_stream", "_user",
        "bad_commands", "cfg", "commands", "maildrop", "mode", "retrieved", "tls", "user",
    )

    def __init__(self, cfg: MachineConfig, tls: bool = False) -> None:
        self.cfg = cfg
        self.tls = tls
        self.mode = AUTHORIZATION  # read-only for adapters
        self.user: str | None = None  # the account, once logged in
        self.maildrop: Maildrop | None = None
        self.commands = 0
        self.bad_commands = 0
        self.retrieved = 0  # RETR answered with a message
        self._user: str | None = None  # USER given, waiting for PASS
        self._buf = b""
        self._pos = 0
        self._skipping = False
        self._out: list[bytes] = []
        self._stream: Iterator[bytes] | None = None
        self._close: Close | None = None
        self._fetching: Fetch | None = None

    # ----------------------------------------------------------------- adapter interface

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._buf) - self._pos

    @property
    def passwords_allowed(self) -> bool:
        return self.tls or self.cfg.plaintext_auth

    def greeting(self) -> bytes:
        return W.GREETING

    def feed(self, data: bytes) -> Event | None:
        """Take bytes from the client; return the first event that needs the adapter."""
        if self.mode == CLOSED:
            return None
        self.receive(data)
        return self.next_event()

    def receive(self, data: bytes) -> None:
        """Buffer bytes from the client without parsing them (see ``next_event``)."""
        if self.mode == CLOSED:
            return
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
        else:
            self._buf = data
        self._pos = 0

    @property
    def line_ready(self) -> bool:
        """A complete line is buffered and the machine would parse it now."""
        return (self.mode in (AUTHORIZATION, SASL, TRANSACTION)
                and self._buf.find(b"\n", self._pos) >= 0)

    def next_event(self, limit: int | None = None) -> Event | None:
        """Parse buffered lines until an event is due (returned) or more bytes are needed;
        with ``limit``, also stop (None) after that many lines."""
        handled = 0
        while True:
            mode = self.mode
            if mode == CLOSED:
                close, self._close = self._close, None
                return close
            if mode not in (AUTHORIZATION, SASL, TRANSACTION):
                return None
            if limit is not None and handled >= limit:
                return None
            handled += 1
            buf = self._buf
            pos = self._pos
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > self.cfg.max_line_length + 1:
                    self._skipping = True
                    self._buf = b""
                    self._pos = 0
                return None
            self._pos = nl + 1
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            self.commands += 1
            if self._skipping or end - pos > self.cfg.max_line_length:
                self._skipping = False
                if mode == SASL:
                    self.mode = AUTHORIZATION
                self._error(W.TOO_LONG)
                continue
            line = buf[pos:end]
            ev = self._sasl_response(line) if mode == SASL else self._command(line)
            if ev is not None:
                return ev

    def data_to_send(self) -> bytes:
        """Reply bytes queued since the last call, joined for a single write."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def take_stream(self) -> Iterator[bytes] | None:
        """The rest of a long RETR/TOP answer (after ``data_to_send``), to be written before
        the next event is asked for."""
        stream, self._stream = self._stream, None
        return stream

    def logged_in(self, user: str, maildrop: Maildrop) -> None:
        """The answer to :class:`Login`: the password was right and the maildrop is ours."""
        self._expect_wait()
        self.user = user
        self.maildrop = maildrop
        self.mode = TRANSACTION
        self._out.append(W.LOGGED_IN)

    def login_failed(self, reply: bytes, counted: bool = True) -> None:
        """The answer to :class:`Login` when it failed; ``counted`` for bad credentials,
        not for a maildrop locked elsewhere or a store failure."""
        self._expect_wait()
        self.mode = AUTHORIZATION
        if counted:
            self._error(reply)
        else:
            self._out.append(reply)

    def fetched(self, body: bytes | None) -> None:
        """The answer to :class:`Fetch`: the message as stored, or None when it is gone."""
        self._expect_wait()
        self.mode = TRANSACTION
        fetch, self._fetching = self._fetching, None
        assert fetch is not None and self.maildrop is not None
        if body is None:
            self._out.append(W.err(f"Message {fetch.number} expunged."))
            return
        body = W.normalized(body)
        if fetch.lines is None:
            self.maildrop.retrieved(fetch.number)
            self.retrieved += 1
            self._out.append(W.ok(f"{self.maildrop.size(fetch.number)} octets"))
        else:
            body = W.top_cut(body, fetch.lines)
            self._out.append(W.ok())
        chunks = W.message_chunks(body)
        if len(body) <= W.CHUNK:
            self._out.extend(chunks)
        else:
            self._stream = chunks

    def updated(self, ok: bool) -> None:
        """The answer to :class:`Update`; the machine closes after its reply."""
        self._expect_wait()
        deleted = self.maildrop is not None and self.maildrop.deleted_count > 0
        if ok:
            self._finish(W.LOGGING_OUT_DELETED if deleted else W.LOGGING_OUT, "quit")
        else:
            self._finish(W.UPDATE_FAILED, "update failed")

    def tls_started(self) -> None:
        """TLS is up after STLS: forget what was learnt before it (RFC 2595 4)."""
        if self.mode != TLS:
            raise RuntimeError("tls_started without STLS")
        self.mode = AUTHORIZATION
        self.tls = True
        self._user = None

    def close_with(self, reply: bytes) -> None:
        """Queue a final reply (timeout, shutdown, lost lock) and stop parsing."""
        self._out.append(reply)
        self.mode = CLOSED
        self._close = None

    # ----------------------------------------------------------------- internals

    def _expect_wait(self) -> None:
        if self.mode != WAIT:
            raise RuntimeError("answer given while no event was pending")

    def _finish(self, reply: bytes, reason: str) -> None:
        self._out.append(reply)
        self.mode = CLOSED
        self._close = Close(reason)

    def _error(self, reply: bytes) -> None:
        """Queue an error reply and count it; too many → close."""
        self._out.append(reply)
        self.bad_commands += 1
        if self.bad_commands >= self.cfg.max_bad_commands:
            self._finish(W.TOO_MANY_ERRORS, "too many errors")

    def _command(self, line: bytes) -> Event | None:
        sp = line.find(b" ")
        verb = (line if sp < 0 else line[:sp]).upper()
        raw_arg = b"" if sp < 0 else line[sp + 1 :]
        if b"\0" in line or b"\r" in line:
            self._error(W.BAD_BYTES)
            return None
        try:
            arg = raw_arg.decode("utf-8")
        except UnicodeDecodeError:
            self._error(W.BAD_BYTES)
            return None
        if self.mode == TRANSACTION:
            handler = _TRANSACTION.get(verb)
            if handler is None:
                self._error(W.err("Already logged in.") if verb in _AUTHORIZATION_ONLY
                            else W.UNKNOWN)
                return None
        else:
            handler = _AUTHORIZATION.get(verb)
            if handler is None:
                self._error(W.NOT_LOGGED_IN if verb in _TRANSACTION_ONLY else W.UNKNOWN)
                return None
        return handler(self, arg)

    # -- AUTHORIZATION state ------------------------------------------------------------

    def _capa(self, arg: str) -> Event | None:
        stls = self.mode != TRANSACTION and self.cfg.starttls_available and not self.tls
        self._out.append(W.capabilities(stls=stls, passwords=self.passwords_allowed))
        return None

    def _user_cmd(self, arg: str) -> Event | None:
        if not self.passwords_allowed:
            self._error(W.PLAINTEXT_DISALLOWED)
        elif not arg.strip():
            self._error(W.NO_USERNAME)
        else:
            self._user = arg.strip()
            self._out.append(W.USER_OK)
        return None

    def _pass(self, arg: str) -> Event | None:
        if not self.passwords_allowed:
            self._error(W.PLAINTEXT_DISALLOWED)
            return None
        user, self._user = self._user, None
        if user is None:
            self._error(W.NO_USERNAME)
            return None
        self.mode = WAIT
        return Login(user, arg, "USER")

    def _auth(self, arg: str) -> Event | None:
        words = arg.split()
        if not words:
            self._out.append(W.mechanisms(self.passwords_allowed))
            return None
        if len(words) > 2:
            self._error(W.AUTH_SYNTAX)
            return None
        if words[0].upper() != "PLAIN":
            self._error(W.BAD_MECHANISM)
            return None
        if not self.passwords_allowed:
            self._error(W.PLAINTEXT_DISALLOWED)
            return None
        if len(words) == 1:
            self.mode = SASL
            self._out.append(W.PLAIN_CONTINUE)
            return None
        raw = decode_response(words[1].encode("ascii", "replace"))
        if raw is None:
            self._error(W.BAD_BASE64)
            return None
        return self._plain(raw)

    def _sasl_response(self, line: bytes) -> Event | None:
        self.mode = AUTHORIZATION
        if line.strip() == b"*":
            self._error(W.AUTH_ABORTED)
            return None
        raw = decode_response(line.strip())
        if raw is None:
            self._error(W.BAD_BASE64)
            return None
        return self._plain(raw)

    def _plain(self, raw: bytes) -> Event | None:
        plain = parse_plain(raw)
        if plain is None or (plain.authzid and plain.authzid != plain.user):
            self._error(W.AUTH_FAILED)
            return None
        self.mode = WAIT
        return Login(plain.user, plain.password, "PLAIN")

    def _apop(self, arg: str) -> Event | None:
        self._error(W.err("APOP not enabled."))
        return None

    def _stls(self, arg: str) -> Event | None:
        if arg.strip():
            self._error(W.NO_ARGUMENTS)
        elif self.tls:
            self._error(W.ALREADY_TLS)
        elif not self.cfg.starttls_available:
            self._error(W.NO_TLS)
        else:
            self._out.append(W.BEGIN_TLS)
            discarded = self.buffered
            self._buf = b""
            self._pos = 0
            self._user = None
            self.mode = TLS
            return StartTls(discarded)
        return None

    def _quit(self, arg: str) -> Event | None:
        if self.mode == TRANSACTION:
            drop = self.maildrop
            assert drop is not None
            deleted, seen = drop.deleted_uids(), drop.seen_uids()
            if deleted or seen:
                self.mode = WAIT
                return Update(tuple(deleted), tuple(seen))
        self._finish(W.LOGGING_OUT, "quit")
        return None

    # -- TRANSACTION state --------------------------------------------------------------

    def _no_args(self, arg: str) -> bool:
        if arg.strip():
            self._error(W.NO_ARGUMENTS)
            return False
        return True

    def _number(self, text: str) -> int | None:
        """A message number that names a message not marked deleted, or None after the
        error reply."""
        drop = self.maildrop
        assert drop is not None
        if not text.isascii() or not text.isdigit():
            self._error(W.err(f"Invalid message number: {_shown(text)}"))
            return None
        if len(text) > _MAX_NUMBER_DIGITS:
            self._error(W.err(f"Message number too large: {_shown(text)}"))
            return None
        number = int(text)
        if not 1 <= number <= drop.count:
            self._error(W.err(f"There's no message {number}."))
            return None
        if drop.is_deleted(number):
            self._error(W.DELETED)
            return None
        return number

    def _one_number(self, arg: str) -> int | None:
        words = arg.split()
        if not words:
            self._error(W.MISSING_NUMBER)
            return None
        if len(words) > 1:
            self._error(W.err(f"Noise after message number: {_shown(' '.join(words[1:]))}"))
            return None
        return self._number(words[0])

    def _stat(self, arg: str) -> Event | None:
        if self._no_args(arg):
            drop = self.maildrop
            assert drop is not None
            live = drop.count - drop.deleted_count
            self._out.append(W.ok(f"{live} {drop.total_size - drop.deleted_size}"))
        return None

    def _list(self, arg: str) -> Event | None:
        drop = self.maildrop
        assert drop is not None
        if arg.strip():
            number = self._one_number(arg)
            if number is not None:
                self._out.append(W.ok(f"{number} {drop.size(number)}"))
            return None
        lines = [f"+OK {drop.count - drop.deleted_count} messages:"]
        lines.extend(f"{n} {drop.size(n)}" for n in drop.live())
        lines.append(".\r\n")
        self._out.append("\r\n".join(lines).encode())
        return None

    def _uidl(self, arg: str) -> Event | None:
        drop = self.maildrop
        assert drop is not None
        validity = drop.uidvalidity
        if arg.strip():
            number = self._one_number(arg)
            if number is not None:
                self._out.append(W.ok(f"{number} {W.uidl(drop.uid(number), validity)}"))
            return None
        lines = ["+OK"]
        lines.extend(f"{n} {W.uidl(drop.uid(n), validity)}" for n in drop.live())
        lines.append(".\r\n")
        self._out.append("\r\n".join(lines).encode())
        return None

    def _retr(self, arg: str) -> Event | None:
        number = self._one_number(arg)
        if number is None:
            return None
        return self._fetch(number, None)

    def _top(self, arg: str) -> Event | None:
        words = arg.split()
        if len(words) != 2:
            self._error(W.err("TOP needs a message number and a line count."))
            return None
        number = self._number(words[0])
        if number is None:
            return None
        count = words[1]
        if not count.isascii() or not count.isdigit():
            self._error(W.err(f"Invalid size: {_shown(count)}"))
            return None
        if len(count) > _MAX_NUMBER_DIGITS:
            self._error(W.err(f"Size too large: {_shown(count)}"))
            return None
        return self._fetch(number, int(count))

    def _fetch(self, number: int, lines: int | None) -> Event:
        assert self.maildrop is not None
        fetch = Fetch(number, self.maildrop.uid(number), lines)
        self._fetching = fetch
        self.mode = WAIT
        return fetch

    def _dele(self, arg: str) -> Event | None:
        number = self._one_number(arg)
        if number is not None:
            assert self.maildrop is not None
            self.maildrop.delete(number)
            self._out.append(W.MARKED)
        return None

    def _rset(self, arg: str) -> Event | None:
        if self._no_args(arg):
            assert self.maildrop is not None
            self.maildrop.reset()
            self._out.append(W.ok())
        return None

    def _noop(self, arg: str) -> Event | None:
        if self._no_args(arg):
            self._out.append(W.ok())
        return None


def _shown(text: str) -> str:
    """An argument echoed in an error: printable ASCII only, at most 40 characters."""
    clean = "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:40])
    return clean + ("..." if len(text) > 40 else "")


_Handler = Callable[[Pop3Machine, str], Event | None]
_AUTHORIZATION: dict[bytes, _Handler] = {
    b"CAPA": Pop3Machine._capa,
    b"USER": Pop3Machine._user_cmd,
    b"PASS": Pop3Machine._pass,
    b"AUTH": Pop3Machine._auth,
    b"APOP": Pop3Machine._apop,
    b"STLS": Pop3Machine._stls,
    b"QUIT": Pop3Machine._quit,
}
_TRANSACTION: dict[bytes, _Handler] = {
    b"CAPA": Pop3Machine._capa,
    b"STAT": Pop3Machine._stat,
    b"LIST": Pop3Machine._list,
    b"RETR": Pop3Machine._retr,
    b"DELE": Pop3Machine._dele,
    b"RSET": Pop3Machine._rset,
    b"TOP": Pop3Machine._top,
    b"UIDL": Pop3Machine._uidl,
    b"NOOP": Pop3Machine._noop,
    b"QUIT": Pop3Machine._quit,
}
