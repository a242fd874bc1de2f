"""What goes on the POP3 wire: reply lines, the CAPA list, UIDLs and message streams.

Replies follow Dovecot's wording where RFC 1939 leaves the text free, and carry RFC 2449 /
RFC 3206 response codes (``[AUTH]``, ``[IN-USE]``, ``[SYS/TEMP]``, ``[SYS/PERM]``).

UIDL. A message's unique-id is its IMAP UID and its folder's UIDVALIDITY, both as eight
upper-case hex digits (Dovecot's default ``pop3_uidl_format = %08Xu%08Xv``): the same
message keeps it across sessions and whatever else is deleted, IMAP and POP3 agree on
which message it names, and it changes when INBOX is deleted and recreated.

Message streams. RETR and TOP send the message as stored (CRLF line ends), a line that
starts with "." gets another "." (byte-stuffing), then ".". :func:`message_chunks` cuts the
body into pieces of ``CHUNK`` bytes and stuffs each piece on its own (remembering whether a
piece ends a line), so a big message is written piece by piece as the client reads it. A
stored message with bare LF line ends is sent with CRLF (like Dovecot); one whose last line
has no line end gets one.
"""

from __future__ import annotations

from collections.abc import Iterator

CHUNK = 64 * 1024
IMPLEMENTATION = "Hayate"


def ok(text: str = "") -> bytes:
    return f"+OK {text}\r\n".encode() if text else b"+OK\r\n"


def err(text: str) -> bytes:
    return f"-ERR {text}\r\n".encode()


def uidl(uid: int, uidvalidity: int) -> str:
    """The unique-id of a message: see the module docstring."""
    return f"{uid:08X}{uidvalidity:08X}"


def capabilities(*, stls: bool, passwords: bool) -> bytes:
    """The CAPA reply. USER and SASL PLAIN only when passwords may be sent now (TLS is up,
    or plaintext_auth); STLS while it can still be used (like Dovecot)."""
    lines = ["+OK", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
    if stls:
        lines.append("STLS")
    if passwords:
        lines += ["USER", "SASL PLAIN"]
    lines += [f"IMPLEMENTATION {IMPLEMENTATION}", "."]
    return ("\r\n".join(lines) + "\r\n").encode()


def mechanisms(passwords: bool) -> bytes:
    """The answer to a bare ``AUTH`` (the pre-RFC 5034 mechanism list Outlook asks for)."""
    return b"+OK\r\nPLAIN\r\n.\r\n" if passwords else b"+OK\r\n.\r\n"


# Fixed replies.
GREETING = ok("Hayate POP3 ready.")
LOGGED_IN = ok("Logged in.")
LOGGING_OUT = ok("Logging out.")
LOGGING_OUT_DELETED = ok("Logging out, messages deleted.")
MARKED = ok("Marked to be deleted.")
BEGIN_TLS = ok("Begin TLS negotiation now.")
USER_OK = ok()
PLAIN_CONTINUE = b"+ \r\n"
AUTH_FAILED = err("[AUTH] Authentication failed.")
PLAINTEXT_DISALLOWED = err(
    "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
)
IN_USE = err("[IN-USE] Mailbox is locked by another POP3 session.")
TOO_MANY_SESSIONS = err("[IN-USE] Maximum number of connections for this user exceeded.")
TEMP_FAILURE = err("[SYS/TEMP] Internal error occurred. Refer to server log for more information.")
LOCK_LOST = err("[SYS/TEMP] Couldn't update POP3 session lock.")
UPDATE_FAILED = err("[SYS/TEMP] Storage error during logout, nothing was deleted.")
NO_USERNAME = err("No username given.")
BAD_MECHANISM = err("[AUTH] Unsupported authentication mechanism.")
BAD_BASE64 = err("[AUTH] Invalid base64 data in continued response.")
AUTH_ABORTED = err("[AUTH] Authentication aborted by client.")
AUTH_SYNTAX = err("[AUTH] Invalid AUTH arguments.")
UNKNOWN = err("Unknown command.")
NOT_LOGGED_IN = err("Unknown command (log in first).")
ALREADY_TLS = err("TLS is already active.")
NO_TLS = err("TLS support isn't enabled.")
TOO_LONG = err("Input line too long.")
BAD_BYTES = err("Invalid characters in command.")
NO_ARGUMENTS = err("This command takes no arguments.")
MISSING_NUMBER = err("Message number expected.")
DELETED = err("Message is deleted.")
TOO_MANY_ERRORS = err("Too many bad commands.")
TIMEOUT = err("Disconnected for inactivity.")
SHUTTING_DOWN = err("[SYS/TEMP] Server shutting down.")
TOO_MANY_CONNECTIONS = err("[SYS/TEMP] Too many connections, try again later.")


def _line_end(body: bytes, start: int, limit: int) -> int:
    """The offset just after the ``limit``-th line end at or after ``start`` (len(body)
    when there are fewer)."""
    pos = start
    for _ in range(limit):
        nl = body.find(b"\n", pos)
        if nl < 0:
            return len(body)
        pos = nl + 1
    return pos


def top_cut(body: bytes, lines: int) -> bytes:
    """The header, the blank line after it and the first ``lines`` lines of the body (RFC
    1939 TOP). A message without a blank line is all header and comes whole."""
    if body.startswith(b"\r\n"):
        header_end = 2
    elif body.startswith(b"\n"):
        header_end = 1
    else:
        crlf = body.find(b"\r\n\r\n")
        lf = body.find(b"\n\n")
        ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
        if not ends:
            return body
        header_end = min(ends)
    return body[: _line_end(body, header_end, lines)] if lines else body[:header_end]


def normalized(body: bytes) -> bytes:
    """``body`` with every line ending in CRLF (a copy only when some LF lacks its CR)."""
    if body.count(b"\n") == body.count(b"\r\n"):
        return body
    return body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message_chunks(body: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    """The multi-line body of a RETR/TOP answer for ``body`` (already CRLF): byte-stuffed
    pieces of at most about ``chunk`` bytes, then the final ".". Lazy: one piece at a time."""
    size = len(body)
    start = 0
    line_start = True  # the next byte begins a line
    while start < size:
        end = min(start + chunk, size)
        piece = body[start:end].replace(b"\n.", b"\n..")
        if line_start and piece[:1] == b".":
            piece = b"." + piece
        line_start = body[end - 1] == 10  # "\n"
        start = end
        if start < size:
            yield piece
        elif line_start:
            yield piece + b".\r\n"
        else:
            yield piece + b"\r\n.\r\n"
    if size == 0:
        yield b".\r\n"
