"""The fixed replies of the SMTP server, already encoded, and the renderer for policy replies.

Every reply after the greeting and HELO/EHLO carries an RFC 3463 enhanced status code
(RFC 2034 exempts those two). Replies that come from policy or the sink without one get
``X.0.0`` of their class, so a client always sees one.
"""

from __future__ import annotations

from functools import lru_cache

from hayate.core.reply import SmtpReply


def line(code: int, enhanced: str, text: str) -> bytes:
    return f"{code} {enhanced} {text}\r\n".encode("ascii")


OK = line(250, "2.0.0", "Ok")
MAIL_OK = line(250, "2.1.0", "Ok")
RCPT_OK = line(250, "2.1.5", "Ok")
START_DATA = b"354 End data with <CR><LF>.<CR><LF>\r\n"
BYE = line(221, "2.0.0", "Bye")
HELP = line(
    214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY STARTTLS AUTH"
)
VRFY = line(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
READY_TLS = line(220, "2.0.0", "Ready to start TLS")
AUTH_OK = line(235, "2.7.0", "Authentication successful")

UNKNOWN = line(500, "5.5.2", "Error: command not recognized")
EMPTY = line(500, "5.5.2", "Error: bad syntax")
TOO_LONG = line(500, "5.5.2", "Error: line too long")
BARE_LF_CMD = line(500, "5.5.2", "Error: bare CR or LF in command not allowed")
NON_ASCII = line(500, "5.5.2", "Error: non-ASCII characters in command need SMTPUTF8")
BAD_UTF8 = line(500, "5.5.2", "Error: invalid UTF-8 in command")
NOT_IMPLEMENTED = line(502, "5.5.1", "Error: command not implemented")

NEED_HELO = line(503, "5.5.1", "Error: send HELO/EHLO first")
NESTED_MAIL = line(503, "5.5.1", "Error: nested MAIL command")
NEED_MAIL = line(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT = line(503, "5.5.1", "Error: need RCPT command")
IN_TRANSACTION = line(503, "5.5.1", "Error: MAIL transaction in progress")
AUTH_NOT_ENABLED = line(503, "5.5.1", "Error: authentication not enabled")
ALREADY_AUTHED = line(503, "5.5.1", "Error: already authenticated")
TLS_ACTIVE = line(554, "5.5.1", "Error: TLS already active")

SYNTAX_EHLO = line(501, "5.5.4", "Syntax: EHLO hostname")
SYNTAX_HELO = line(501, "5.5.4", "Syntax: HELO hostname")
SYNTAX_MAIL = line(501, "5.5.4", "Syntax: MAIL FROM:<address>")
SYNTAX_RCPT = line(501, "5.5.4", "Syntax: RCPT TO:<address>")
SYNTAX_NOARG = line(501, "5.5.4", "Syntax error: no arguments allowed")
SYNTAX_AUTH = line(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
BAD_PARAM = line(501, "5.5.4", "Error: bad parameter syntax")
BAD_SENDER = line(501, "5.1.7", "Error: bad sender address syntax")
BAD_RECIPIENT = line(501, "5.1.3", "Error: bad recipient address syntax")
UTF8_ADDRESS = line(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")

AUTH_REQUIRED = line(530, "5.7.0", "Authentication required")
ENCRYPTION_REQUIRED = line(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
AUTH_MECH = line(504, "5.5.4", "Unrecognized authentication type")
AUTH_BASE64 = line(501, "5.5.2", "Error: cannot decode response")
AUTH_ABORTED = line(501, "5.7.0", "Authentication aborted")
AUTH_FAILED = line(535, "5.7.8", "Authentication credentials invalid")
AUTH_PLAIN_CHALLENGE = b"334 \r\n"
AUTH_USERNAME = b"334 VXNlcm5hbWU6\r\n"
AUTH_PASSWORD = b"334 UGFzc3dvcmQ6\r\n"

TOO_MANY_RCPTS = line(452, "4.5.3", "Error: too many recipients")
SIZE_EXCEEDED = line(552, "5.3.4", "Error: message size exceeds fixed limit")
BARE_LF_DATA = line(550, "5.5.2", "bare CR or LF in message not allowed")
INTERNAL_ERROR = line(451, "4.3.0", "Internal error, try again later")


def unsupported_param(keyword: str) -> bytes:
    return line(555, "5.5.4", f"Error: unsupported option {keyword[:40]}")


def bad_param_value(keyword: str) -> bytes:
    return line(501, "5.5.4", f"Error: bad {keyword[:40]} parameter value")


def greeting(hostname: str) -> bytes:
    return f"220 {hostname} ESMTP Hayate\r\n".encode()


def too_many_errors(hostname: str) -> bytes:
    return line(421, "4.7.0", f"{hostname} Error: too many errors")


def timeout(hostname: str) -> bytes:
    return line(421, "4.4.2", f"{hostname} Error: timeout exceeded")


def too_many_connections(hostname: str) -> bytes:
    return line(421, "4.7.0", f"{hostname} Error: too many connections")


def shutting_down(hostname: str) -> bytes:
    return line(421, "4.3.2", f"{hostname} Service shutting down, closing connection")


@lru_cache(maxsize=256)
def render(reply: SmtpReply) -> bytes:
    """Wire form of a policy/sink reply, adding ``X.0.0`` when it has no enhanced code."""
    if not reply.enhanced or "\r" in reply.text:
        enhanced = reply.enhanced or f"{reply.code // 100}.0.0"
        reply = SmtpReply(reply.code, enhanced, reply.text.replace("\r", ""))
    return reply.render()


@lru_cache(maxsize=64)
def ehlo(hostname: str, max_size: int, starttls: bool, auth: bool) -> bytes:
    """The EHLO reply: what this session may use right now (never CHUNKING)."""
    lines = [hostname, "PIPELINING", f"SIZE {max_size}"]
    if starttls:
        lines.append("STARTTLS")
    if auth:
        lines.append("AUTH PLAIN LOGIN")
    lines += ["ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"]
    last = len(lines) - 1
    return "".join(f"250{' ' if i == last else '-'}{t}\r\n" for i, t in enumerate(lines)).encode()
