"""The client side of the SMTP wire format, without any I/O (sans-I/O).

Owns: parsing server replies (multi-line, RFC 3463 enhanced status codes) from raw bytes,
reading the EHLO extension list, building MAIL/RCPT command lines with their ESMTP
parameters, and turning a message into its DATA form (dot-stuffed, CRLF-terminated, ending
in ".\\r\\n"). Everything here is pure and tested with byte transcripts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hayate.core.reply import SmtpReply

MAX_REPLY_LINE = 8192  # bytes of one reply line before we call the server broken
MAX_REPLY_LINES = 512  # lines of one multi-line reply

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\Z")

# Single-line replies seen recently, by their raw bytes: most replies of a busy server are
# the same few lines ("250 2.1.5 Ok"), and SmtpReply is immutable, so parse them once.
_CACHE: dict[bytes, SmtpReply] = {}
_CACHE_SIZE = 1024
_CACHE_LINE = 160


class ReplySyntaxError(Exception):
    """The server sent something that is not an SMTP reply."""


def _split_enhanced(code: int, texts: list[str]) -> SmtpReply:
    """Build a reply, moving a leading "X.Y.Z" that matches the code's class out of the text."""
    first = texts[0]
    token, _, rest = first.partition(" ")
    if (
        len(token) >= 5
        and token[1] == "."
        and token[0] == str(code // 100)
        and _ENHANCED.match(token)
    ):
        texts[0] = rest
        for i in range(1, len(texts)):
            t = texts[i]
            if t.startswith(token):
                texts[i] = t[len(token) :].lstrip(" ")
        return SmtpReply(code, token, "\n".join(texts))
    return SmtpReply(code, "", "\n".join(texts))


class ReplyParser:
    """Feed bytes as they arrive; get back the replies completed by them, in order."""

    __slots__ = ("_buf", "_code", "_texts")

    def __init__(self) -> None:
        self._buf = b""
        self._code = 0
        self._texts: list[str] = []

    @property
    def pending(self) -> bool:
        """True when part of a reply has been received but not its last line."""
        return bool(self._buf) or bool(self._texts)

    def feed(self, data: bytes) -> list[SmtpReply]:
        buf = self._buf + data if self._buf else data
        out: list[SmtpReply] = []
        start = 0
        find = buf.find
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            end = nl - 1 if nl > start and buf[nl - 1] == 13 else nl
            line = buf[start:end]
            start = nl + 1
            single = not self._texts
            if single:
                cached = _CACHE.get(line)
                if cached is not None:
                    out.append(cached)
                    continue
            reply = self._line(line)
            if reply is not None:
                out.append(reply)
                if single and len(line) <= _CACHE_LINE:
                    if len(_CACHE) >= _CACHE_SIZE:
                        _CACHE.clear()
                    _CACHE[line] = reply
        rest = buf[start:]
        if len(rest) > MAX_REPLY_LINE:
            raise ReplySyntaxError("reply line too long")
        self._buf = rest
        return out

    def _line(self, line: bytes) -> SmtpReply | None:
        head = line[:3]
        if len(head) != 3 or not head.isdigit():
            raise ReplySyntaxError(f"not an SMTP reply line: {line[:80]!r}")
        code = int(head)
        sep = line[3:4]
        if sep not in (b" ", b"-", b""):
            raise ReplySyntaxError(f"bad separator in reply line: {line[:80]!r}")
        if self._texts and code != self._code:
            raise ReplySyntaxError(f"reply code changed inside a multi-line reply: {line[:80]!r}")
        self._code = code
        self._texts.append(line[4:].decode("utf-8", "replace"))
        if sep == b"-":
            if len(self._texts) > MAX_REPLY_LINES:
                raise ReplySyntaxError("multi-line reply too long")
            return None
        texts = self._texts
        self._texts = []
        return _split_enhanced(code, texts)


def parse_ehlo(reply: SmtpReply) -> dict[str, str]:
    """EHLO keywords (upper case) → their parameters; the greeting line is skipped."""
    extensions: dict[str, str] = {}
    lines = reply.text.split("\n")
    for line in lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            extensions[keyword.upper()] = params.strip()
    return extensions


def size_limit(extensions: dict[str, str]) -> int:
    """The server's SIZE limit in bytes; 0 when it announced none (or SIZE 0: no limit)."""
    value = extensions.get("SIZE", "")
    return int(value) if value.isdigit() else 0


def xtext(value: str) -> str:
    """RFC 3461 xtext: '+', '=' and anything outside printable ASCII become '+HH'."""
    out = []
    for ch in value:
        o = ord(ch)
        if 33 <= o <= 126 and ch not in "+=":
            out.append(ch)
        else:
            out.extend(f"+{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def dot_stuff(data: bytes) -> bytes:
    """The DATA form of ``data``: every line starting with "." gets one more, ".\\r\\n" ends it.

    Stuffing after every LF (not only CRLF) also covers a stray bare LF, so a line that a
    lenient server might see as the end of data is always stuffed.
    """
    body = data.replace(b"\n.", b"\n..")
    if body[:1] == b".":
        body = b"." + body
    if not body:
        return b".\r\n"
    if body[-2:] != b"\r\n":
        body += b"\n.\r\n" if body[-1:] == b"\r" else b"\r\n.\r\n"
        return body
    return body + b".\r\n"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message ready for the wire; ``body`` is built once and sent on every transaction."""

    sender: str
    size: int  # bytes of the message before stuffing (the SIZE= parameter)
    body: bytes  # dot-stuffed, ends with ".\r\n"
    smtputf8: bool = False
    body_8bit: bool = False
    envid: str | None = None

    @classmethod
    def build(
        cls,
        sender: str,
        data: bytes,
        *,
        smtputf8: bool = False,
        body_8bit: bool = False,
        envid: str | None = None,
    ) -> OutboundMessage:
        return cls(sender, len(data), dot_stuff(data), smtputf8, body_8bit, envid)


def mail_command(message: OutboundMessage, extensions: dict[str, str]) -> bytes:
    """MAIL FROM with the parameters the server announced and the message needs."""
    parts = [f"MAIL FROM:<{message.sender}>"]
    if "SIZE" in extensions:
        parts.append(f" SIZE={message.size}")
    if message.body_8bit and "8BITMIME" in extensions:
        parts.append(" BODY=8BITMIME")
    if message.smtputf8:
        parts.append(" SMTPUTF8")
    if message.envid and "DSN" in extensions:
        parts.append(f" ENVID={xtext(message.envid)}")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def rcpt_command(recipient: str) -> bytes:
    return f"RCPT TO:<{recipient}>\r\n".encode()
