"""The sans-I/O SMTP server: bytes in, reply bytes and events out; no sockets, no clock.

States: ``CMD`` (reading command lines), ``AUTH`` (reading SASL responses), ``DATA`` (reading
a message), ``WAIT`` (an event is with the adapter; bytes are buffered, nothing is parsed),
``TLS`` (STARTTLS answered: bytes that followed it in the same read were discarded, later
bytes are decrypted ones and wait for ``tls_started``), ``CLOSED`` (input is ignored).

Strategies:
- PIPELINING: ``feed`` parses every complete line in the buffer in order and queues the replies;
  the adapter writes them in one go with ``data_to_send``. Partial lines wait for more bytes.
- DATA is read in bulk: the end is found with ``bytearray.find`` of CRLF.CRLF (the buffer
  starts with a virtual CRLF so an empty message and a first-line dot need no special case), and
  dot-unstuffing is one ``bytes.replace``.
- Smuggling (CVE-2023-51764): only CRLF.CRLF ends the data. A bare CR or LF anywhere in the
  message makes it rejected with 550 5.5.2 after the real end; a command line ending in a bare
  LF gets 500 5.5.2. Both leave the session usable.
- Memory: a command line longer than ``max_line_length`` is discarded as it arrives; a message
  larger than ``max_message_size`` (plus a margin for dot-stuffing) is discarded as it arrives
  and refused with 552 5.3.4 at its end.
- Errors (syntax, sequence, failed AUTH) are counted; at ``max_bad_commands`` the machine sends
  421 4.7.0 and asks to close.
- VRFY answers 252 2.5.0 (no user lookup, nothing revealed); EXPN answers 502 5.5.1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hayate.core.envelope import Envelope
from hayate.core.reply import SmtpReply
from hayate.core.sasl import decode_response, parse_plain
from hayate.smtp import replies as R
from hayate.smtp.address import (
    ParamError,
    parse_params,
    split_path,
    valid_address,
    valid_xtext,
)
from hayate.smtp.events import (
    Authenticate,
    CheckRecipient,
    CheckSender,
    Close,
    Event,
    MessageReceived,
    StartTls,
)

CMD, AUTH, DATA, WAIT, TLS, CLOSED = range(6)
_PLAIN, _LOGIN_USER, _LOGIN_PASS = range(3)
_END = b"\r\n.\r\n"
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """What one listener allows; built once per listener by the adapter."""

    hostname: str = "localhost"
    max_message_size: int = 36_700_160
    max_recipients: int = 1000
    max_line_length: int = 4096
    max_bad_commands: int = 20
    auth_enabled: bool = False  # AUTH offered at all (submission listeners)
    auth_requires_tls: bool = True  # AUTH only once TLS is up
    require_auth: bool = False  # MAIL refused with 530 until AUTH succeeded
    starttls_available: bool = False  # a TLS context exists for STARTTLS

    @property
    def data_cap(self) -> int:
        """Raw DATA bytes kept before discarding: the limit plus room for dot-stuffing."""
        return self.max_message_size + self.max_message_size // 32 + 1024


class SmtpMachine:
    """One SMTP session's protocol state. See the module docstring for the states."""

    __slots__ = (
        "_auth_login_user", "_auth_step", "_body_8bit", "_buf", "_close", "_data",
        "_declared_size", "_envid", "_out", "_pending_rcpt", "_pending_sender", "_pos", "_rcpts",
        "_ret", "_scan", "_sender", "_skipping", "_smtputf8", "_too_big", "accepted", "auth_user",
        "bad_commands", "cfg", "commands", "esmtp", "helo", "max_line", "mode", "rejected", "tls",
        "version",
    )

    def __init__(self, cfg: MachineConfig, tls: bool = False) -> None:
        self.cfg = cfg
        self.tls = tls
        self.helo: str | None = None
        self.esmtp = False
        self.auth_user: str | None = None
        self.version = 0  # bumped when helo/tls/auth change (adapters cache SessionInfo on it)
        self.commands = 0
        self.bad_commands = 0
        self.accepted = 0
        self.rejected = 0
        self.mode = CMD  # read-only for adapters: CMD, AUTH, DATA, WAIT, TLS or CLOSED
        self.max_line = cfg.max_line_length
        self._out: list[bytes] = []
        self._buf = b""
        self._pos = 0
        self._skipping = False
        self._data = bytearray()
        self._scan = 0
        self._too_big = False
        self._close: Close | None = None
        self._auth_step = _PLAIN
        self._auth_login_user = ""
        self._sender: str | None = None  # set once MAIL was accepted
        self._pending_sender = ""
        self._pending_rcpt = ""
        self._rcpts: list[str] = []
        self._smtputf8 = False
        self._body_8bit = False
        self._envid: str | None = None
        self._ret: str | None = None
        self._declared_size: int | None = None

    # ----------------------------------------------------------------- adapter interface

    @property
    def in_data(self) -> bool:
        return self.mode == DATA

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        if self.mode == DATA:
            return len(self._data)
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> Event | None:
        """Take bytes from the client; return the first event that needs the adapter, if any."""
        mode = self.mode
        if mode == DATA:
            self._data += data
        elif mode == CLOSED:
            return None
        elif self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        else:
            self._buf = data
            self._pos = 0
        return self.next_event()

    def next_event(self) -> Event | None:
        """Parse buffered bytes until an event is due (returned) or more bytes are needed."""
        while True:
            mode = self.mode
            if mode in (CMD, AUTH):
                buf = self._buf
                pos = self._pos
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if len(buf) - pos > self.max_line + 1:  # + 1: the CR may be in already
                        self._skipping = True
                        self._buf = b""
                        self._pos = 0
                    return None
                self._pos = nl + 1
                self.commands += 1
                crlf = nl > pos and buf[nl - 1] == 13
                if self._skipping:
                    self._skipping = False
                    self._fail_line(R.TOO_LONG)
                elif nl - pos - crlf > self.max_line:
                    self._fail_line(R.TOO_LONG)
                elif not crlf:
                    self._fail_line(R.BARE_LF_CMD)
                elif mode == CMD:
                    ev = self._command(buf[pos : nl - 1])
                    if ev is not None:
                        return ev
                else:
                    ev = self._auth_response(buf[pos : nl - 1])
                    if ev is not None:
                        return ev
            elif mode == DATA:
                if not self._find_end():
                    return None
                ev = self._end_of_data()
                if ev is not None:
                    return ev
            elif mode == CLOSED:
                close, self._close = self._close, None
                return close
            else:
                return None

    def data_to_send(self) -> bytes:
        """Reply bytes queued since the last call, joined for a single write."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def sender_checked(self, refusal: SmtpReply | None) -> None:
        """Policy's answer to :class:`CheckSender`: None accepts."""
        self._expect_wait()
        if refusal is None or refusal.ok:
            self._sender = self._pending_sender
            self._out.append(R.MAIL_OK if refusal is None else R.render(refusal))
        else:
            self._reset_transaction()
            self._out.append(R.render(refusal))

    def recipient_checked(self, refusal: SmtpReply | None) -> None:
        """Policy's answer to :class:`CheckRecipient`: None accepts."""
        self._expect_wait()
        if refusal is None or refusal.ok:
            self._rcpts.append(self._pending_rcpt)
            self._out.append(R.RCPT_OK if refusal is None else R.render(refusal))
        else:
            self._out.append(R.render(refusal))

    def auth_checked(self, account: str | None) -> None:
        """The answer to :class:`Authenticate`: the account address, or None for bad credentials."""
        self._expect_wait()
        if account:
            self.auth_user = account
            self.version += 1
            self._out.append(R.AUTH_OK)
        else:
            self._error(R.AUTH_FAILED)

    def auth_error(self, reply: SmtpReply) -> None:
        """AUTH could not be checked (e.g. 454 4.7.0 temporary failure); counted as an error."""
        self._expect_wait()
        self._error(R.render(reply))

    def message_handled(self, reply: SmtpReply) -> None:
        """The sink's reply to :class:`MessageReceived` (250 … queued as …, or a refusal)."""
        self._expect_wait()
        if reply.ok:
            self.accepted += 1
        else:
            self.rejected += 1
        self._out.append(R.render(reply))
        self._reset_transaction()

    def tls_started(self) -> None:
        """TLS is up after STARTTLS: forget everything learnt before it (RFC 3207 4.2)."""
        if self.mode != TLS:
            raise RuntimeError("tls_started without STARTTLS")
        self.mode = CMD
        self.tls = True
        self.helo = None
        self.esmtp = False
        self.auth_user = None
        self.version += 1
        self._reset_transaction()

    def close_with(self, reply: bytes) -> None:
        """Queue a final reply (timeout, shutdown) and stop parsing."""
        self._out.append(reply)
        self.mode = CLOSED
        self._close = None

    # ----------------------------------------------------------------- internals

    def _expect_wait(self) -> None:
        if self.mode != WAIT:
            raise RuntimeError("answer given while no event was pending")
        self.mode = CMD

    def _reset_transaction(self) -> None:
        self._sender = None
        self._pending_sender = ""
        self._pending_rcpt = ""
        self._rcpts = []
        self._smtputf8 = False
        self._body_8bit = False
        self._envid = None
        self._ret = None
        self._declared_size = None

    def _error(self, reply: bytes) -> None:
        """Queue an error reply and count it; too many → 421 and close."""
        self._out.append(reply)
        self.bad_commands += 1
        if self.bad_commands >= self.cfg.max_bad_commands:
            self._out.append(R.too_many_errors(self.cfg.hostname))
            self.mode = CLOSED
            self._close = Close("too many errors")

    def _fail_line(self, reply: bytes) -> None:
        if self.mode == AUTH:
            self.mode = CMD
        self._error(reply)

    def _command(self, line: bytes) -> Event | None:
        sp = line.find(b" ")
        verb = (line if sp < 0 else line[:sp]).upper()
        arg = b"" if sp < 0 else line[sp + 1 :]
        if b"\r" in line:
            self._error(R.BARE_LF_CMD)
            return None
        handler = _DISPATCH.get(verb)
        if handler is None:
            self._error(R.EMPTY if not line.strip() else R.UNKNOWN)
            return None
        if not arg.isascii():
            if verb != b"MAIL" and verb != b"RCPT":
                self._error(R.NON_ASCII)
                return None
            try:
                text = arg.decode("utf-8")
            except UnicodeDecodeError:
                self._error(R.BAD_UTF8)
                return None
            return handler(self, text, True)
        return handler(self, arg.decode("ascii"), False)

    # Each handler gets the argument text and whether it held non-ASCII characters.

    def _ehlo(self, arg: str, utf8: bool) -> Event | None:
        self._hello(arg, True)
        return None

    def _helo(self, arg: str, utf8: bool) -> Event | None:
        self._hello(arg, False)
        return None

    def _hello(self, arg: str, esmtp: bool) -> None:
        words = arg.split()
        if not words or not words[0].isprintable():
            self._error(R.SYNTAX_EHLO if esmtp else R.SYNTAX_HELO)
            return
        self.helo = words[0][:255]
        self.esmtp = esmtp
        self.version += 1
        self._reset_transaction()
        cfg = self.cfg
        if not esmtp:
            self._out.append(f"250 {cfg.hostname}\r\n".encode())
            return
        starttls = cfg.starttls_available and not self.tls
        auth = cfg.auth_enabled and (self.tls or not cfg.auth_requires_tls)
        self._out.append(R.ehlo(cfg.hostname, cfg.max_message_size, starttls, auth))

    def _path_and_params(
        self, arg: str, keyword: str, syntax_error: bytes
    ) -> tuple[str, dict[str, str | None]] | None:
        """``FROM:<path> PARAMS`` / ``TO:<path> PARAMS``, or None after queuing the error."""
        parts = split_path(arg, keyword)
        if parts is None:
            self._error(syntax_error)
            return None
        address, words = parts
        try:
            return address, (parse_params(words) if words else {})
        except ParamError:
            self._error(R.BAD_PARAM)
            return None

    def _mail(self, arg: str, utf8: bool) -> Event | None:
        if self.helo is None:
            self._error(R.NEED_HELO)
            return None
        if self._sender is not None:
            self._error(R.NESTED_MAIL)
            return None
        if self.cfg.require_auth and self.auth_user is None:
            self._error(R.AUTH_REQUIRED)
            return None
        parsed = self._path_and_params(arg, "FROM:", R.SYNTAX_MAIL)
        if parsed is None:
            return None
        address, params = parsed
        smtputf8 = False
        body_8bit = False
        envid: str | None = None
        ret: str | None = None
        declared_size: int | None = None
        for key, value in params.items():
            if key == "SIZE":
                if value is None or not value.isdigit() or len(value) > 20:
                    self._error(R.bad_param_value(key))
                    return None
                declared_size = int(value)
                if declared_size > self.cfg.max_message_size:
                    self._out.append(R.SIZE_EXCEEDED)
                    return None
            elif key == "BODY":
                body = (value or "").upper()
                if body not in ("7BIT", "8BITMIME"):
                    self._error(R.bad_param_value(key))
                    return None
                body_8bit = body == "8BITMIME"
            elif key == "SMTPUTF8":
                if value is not None:
                    self._error(R.bad_param_value(key))
                    return None
                smtputf8 = True
            elif key == "RET":
                ret = (value or "").upper()
                if ret not in ("FULL", "HDRS"):
                    self._error(R.bad_param_value(key))
                    return None
            elif key == "ENVID":
                if value is None or len(value) > 100 or not valid_xtext(value):
                    self._error(R.bad_param_value(key))
                    return None
                envid = value
            elif key == "AUTH":
                if value is None or not (value == "<>" or valid_xtext(value)):
                    self._error(R.bad_param_value(key))
                    return None
            else:
                self._error(R.unsupported_param(key))
                return None
        if utf8 and not smtputf8:
            self._error(R.UTF8_ADDRESS)
            return None
        if address and not valid_address(address, smtputf8):
            self._error(R.BAD_SENDER)
            return None
        self._pending_sender = address
        self._smtputf8 = smtputf8
        self._body_8bit = body_8bit
        self._envid = envid
        self._ret = ret
        self._declared_size = declared_size
        self.mode = WAIT
        return CheckSender(address)

    def _rcpt(self, arg: str, utf8: bool) -> Event | None:
        sender = self._sender
        if sender is None:
            self._error(R.NEED_MAIL)
            return None
        parsed = self._path_and_params(arg, "TO:", R.SYNTAX_RCPT)
        if parsed is None:
            return None
        address, params = parsed
        for key, value in params.items():
            if key == "NOTIFY":
                notify = set((value or "").upper().split(","))
                if not (notify == {"NEVER"} or (notify and notify <= _NOTIFY)):
                    self._error(R.bad_param_value(key))
                    return None
            elif key == "ORCPT":
                kind, semi, orcpt = (value or "").partition(";")
                if not semi or not kind or not valid_xtext(orcpt):
                    self._error(R.bad_param_value(key))
                    return None
            else:
                self._error(R.unsupported_param(key))
                return None
        if utf8 and not self._smtputf8:
            self._error(R.UTF8_ADDRESS)
            return None
        if address.lower() != "postmaster" and not valid_address(address, self._smtputf8):
            self._error(R.BAD_RECIPIENT)
            return None
        if len(self._rcpts) >= self.cfg.max_recipients:
            self._out.append(R.TOO_MANY_RCPTS)
            return None
        self._pending_rcpt = address
        self.mode = WAIT
        return CheckRecipient(sender, address, self._declared_size)

    def _data_cmd(self, arg: str, utf8: bool) -> Event | None:
        if arg:
            self._error(R.SYNTAX_NOARG)
        elif self._sender is None:
            self._error(R.NEED_MAIL)
        elif not self._rcpts:
            self._error(R.NEED_RCPT)
        else:
            self._out.append(R.START_DATA)
            self.mode = DATA
            data = bytearray(b"\r\n")
            data += memoryview(self._buf)[self._pos :]
            self._data = data
            self._buf = b""
            self._pos = 0
            self._scan = 0
            self._too_big = False
        return None

    def _find_end(self) -> bool:
        """True when the end-of-data mark is in the buffer (its offset is left in ``_scan``)."""
        data = self._data
        end = data.find(_END, self._scan)
        if end >= 0:
            self._scan = end
            return True
        n = len(data)
        if self._too_big or n > self.cfg.data_cap:
            self._too_big = True
            if n > 4:
                del data[: n - 4]
            self._scan = 0
        else:
            self._scan = n - 4 if n > 4 else 0
        return False

    def _end_of_data(self) -> Event | None:
        data = self._data
        end = self._scan
        stop = end + 2  # keep the CRLF that ends the last line
        self._buf = bytes(data[end + 5 :])
        self._pos = 0
        self._data = bytearray()
        self.mode = CMD
        if self._too_big:
            self.rejected += 1
            self._out.append(R.SIZE_EXCEEDED)
            self._reset_transaction()
            return None
        crlf = data.count(b"\r\n", 0, stop)
        if data.count(b"\n", 0, stop) != crlf or data.count(b"\r", 0, stop) != crlf:
            self.rejected += 1
            self._out.append(R.BARE_LF_DATA)
            self._reset_transaction()
            return None
        with memoryview(data) as view:
            message = bytes(view[2:stop])
        if message[:1] == b".":
            message = message[1:]
        message = message.replace(b"\r\n..", b"\r\n.")
        if len(message) > self.cfg.max_message_size:
            self.rejected += 1
            self._out.append(R.SIZE_EXCEEDED)
            self._reset_transaction()
            return None
        sender = self._sender
        assert sender is not None
        envelope = Envelope(
            sender,
            tuple(self._rcpts),
            smtputf8=self._smtputf8,
            body_8bit=self._body_8bit,
            envid=self._envid,
            ret=self._ret,
        )
        self.mode = WAIT
        return MessageReceived(envelope, message)

    def _rset(self, arg: str, utf8: bool) -> Event | None:
        if arg.strip():
            self._error(R.SYNTAX_NOARG)
        else:
            self._reset_transaction()
            self._out.append(R.OK)
        return None

    def _noop(self, arg: str, utf8: bool) -> Event | None:
        self._out.append(R.OK)
        return None

    def _quit(self, arg: str, utf8: bool) -> Event | None:
        self._out.append(R.BYE)
        self.mode = CLOSED
        return Close("quit")

    def _help(self, arg: str, utf8: bool) -> Event | None:
        self._out.append(R.HELP)
        return None

    def _vrfy(self, arg: str, utf8: bool) -> Event | None:
        self._out.append(R.VRFY)
        return None

    def _expn(self, arg: str, utf8: bool) -> Event | None:
        self._out.append(R.NOT_IMPLEMENTED)
        return None

    def _starttls(self, arg: str, utf8: bool) -> Event | None:
        if arg.strip():
            self._error(R.SYNTAX_NOARG)
        elif self.tls:
            self._error(R.TLS_ACTIVE)
        elif not self.cfg.starttls_available:
            self._error(R.NOT_IMPLEMENTED)
        elif self._sender is not None:
            self._error(R.IN_TRANSACTION)
        else:
            self._out.append(R.READY_TLS)
            discarded = len(self._buf) - self._pos
            self._buf = b""
            self._pos = 0
            self.mode = TLS
            return StartTls(discarded)
        return None

    def _auth(self, arg: str, utf8: bool) -> Event | None:
        cfg = self.cfg
        if not cfg.auth_enabled:
            self._error(R.AUTH_NOT_ENABLED)
            return None
        if self.helo is None:
            self._error(R.NEED_HELO)
            return None
        if cfg.auth_requires_tls and not self.tls:
            self._error(R.ENCRYPTION_REQUIRED)
            return None
        if self.auth_user is not None:
            self._error(R.ALREADY_AUTHED)
            return None
        if self._sender is not None:
            self._error(R.IN_TRANSACTION)
            return None
        words = arg.split()
        if not 1 <= len(words) <= 2:
            self._error(R.SYNTAX_AUTH)
            return None
        mechanism = words[0].upper()
        initial = words[1] if len(words) == 2 else None
        if mechanism == "PLAIN":
            if initial is None:
                self._auth_step = _PLAIN
                self.mode = AUTH
                self._out.append(R.AUTH_PLAIN_CHALLENGE)
                return None
            raw = decode_response(initial.encode("ascii"))
            if raw is None:
                self._error(R.AUTH_BASE64)
                return None
            return self._plain(raw)
        if mechanism == "LOGIN":
            self.mode = AUTH
            if initial is None:
                self._auth_step = _LOGIN_USER
                self._out.append(R.AUTH_USERNAME)
                return None
            return self._auth_response(initial.encode("ascii"), _LOGIN_USER)
        self._error(R.AUTH_MECH)
        return None

    def _auth_response(self, line: bytes, step: int | None = None) -> Event | None:
        if step is None:
            step = self._auth_step
        if line == b"*":
            self.mode = CMD
            self._out.append(R.AUTH_ABORTED)
            return None
        raw = decode_response(line)
        if raw is None:
            self.mode = CMD
            self._error(R.AUTH_BASE64)
            return None
        if step == _PLAIN:
            self.mode = CMD
            return self._plain(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.mode = CMD
            self._error(R.AUTH_FAILED)
            return None
        if step == _LOGIN_USER:
            self._auth_login_user = text
            self._auth_step = _LOGIN_PASS
            self.mode = AUTH
            self._out.append(R.AUTH_PASSWORD)
            return None
        self.mode = WAIT
        return Authenticate("LOGIN", self._auth_login_user, text)

    def _plain(self, raw: bytes) -> Event | None:
        plain = parse_plain(raw)
        if plain is None or (plain.authzid and plain.authzid != plain.user):
            self._error(R.AUTH_FAILED)
            return None
        self.mode = WAIT
        return Authenticate("PLAIN", plain.user, plain.password)


_Handler = Callable[[SmtpMachine, str, bool], Event | None]
_DISPATCH: dict[bytes, _Handler] = {
    b"EHLO": SmtpMachine._ehlo,
    b"HELO": SmtpMachine._helo,
    b"MAIL": SmtpMachine._mail,
    b"RCPT": SmtpMachine._rcpt,
    b"DATA": SmtpMachine._data_cmd,
    b"RSET": SmtpMachine._rset,
    b"NOOP": SmtpMachine._noop,
    b"QUIT": SmtpMachine._quit,
    b"HELP": SmtpMachine._help,
    b"VRFY": SmtpMachine._vrfy,
    b"EXPN": SmtpMachine._expn,
    b"STARTTLS": SmtpMachine._starttls,
    b"AUTH": SmtpMachine._auth,
}
