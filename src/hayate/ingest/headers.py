"""Trace and identity headers, added without parsing the whole message.

Only the header block is looked at (up to the first empty line). Received is prepended, as
RFC 5321 4.4 requires; Message-ID and Date are added at the end of the header block when the
message lacks them (RFC 5322 3.6), as Postfix's cleanup does. :func:`take_header` removes a
field meant for us alone (the stream header) and returns its value.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from hayate.core.envelope import Listener, SessionInfo

_date_cache: tuple[int, str] = (0, "")


def rfc5322_date(now: float | None = None) -> str:
    """'Mon, 23 Nov 2026 19:09:00 +0000', cached for the current second."""
    global _date_cache
    stamp = int(time.time() if now is None else now)
    if _date_cache[0] != stamp:
        # RFC 5322: "+0000" is UTC; formatdate's "-0000" would mean "offset unknown".
        _date_cache = (stamp, formatdate(stamp, localtime=False)[:-5] + "+0000")
    return _date_cache[1]


def header_block_end(data: bytes) -> int:
    """Index just after the header block's last CRLF (before the empty line), or len(data)."""
    if data.startswith(b"\r\n"):
        return 0
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end + 2


def has_header(lower_headers: bytes, name: bytes) -> bool:
    """``name`` is lower case with its colon, e.g. b"message-id:"."""
    return lower_headers.startswith(name) or (b"\n" + name) in lower_headers


def count_header(lower_headers: bytes, name: bytes) -> int:
    return int(lower_headers.startswith(name)) + lower_headers.count(b"\n" + name)


def take_header(data: bytes, name: str) -> tuple[bytes, str | None]:
    """Remove every ``name`` field (with its folded lines) from the header block.

    Returns the message without them and the first one's value (unfolded, stripped), or
    the message unchanged and None when it has no such field.
    """
    end = header_block_end(data)
    head = data[:end]
    key = name.lower().encode("ascii") + b":"
    if not has_header(head.lower(), key):
        return data, None
    kept: list[bytes] = []
    value: bytes | None = None
    removing = first = False
    lines = head.split(b"\r\n")
    ends = lines[-1] == b""  # not so for a message of header lines only, without CRLF
    if ends:
        lines.pop()
    for line in lines:
        if line[:1] in (b" ", b"\t"):  # a folded line belongs to the field above it
            if removing:
                if first and value is not None:
                    value += b" " + line.strip()
                continue
        elif line.lower().startswith(key):
            removing, first = True, value is None
            if first:
                value = line[len(key):].strip()
            continue
        else:
            removing = first = False
        kept.append(line)
    rest = b"\r\n".join(kept) + (b"\r\n" if ends and kept else b"")
    text = (value or b"").decode("ascii", "replace").strip()
    return rest + data[end:], text


def received_header(
    session: SessionInfo, hostname: str, queue_id: str, recipients: tuple[str, ...], now: float
) -> bytes:
    if session.listener is Listener.LOCAL:
        line = f"Received: by {hostname} (Hayate, from local) id {queue_id}"
    else:
        proto = "ESMTP" if session.esmtp else "SMTP"
        if session.tls_version:
            proto += "S"
        if session.auth_user:
            proto += "A"
        helo = session.helo or "unknown"
        line = f"Received: from {helo} ([{session.peer_ip}])"
        if session.tls_version:
            line += f"\r\n\t(using {session.tls_version} with cipher {session.tls_cipher})"
        if session.auth_user:
            line += f"\r\n\t(Authenticated sender: {session.auth_user})"
        line += f"\r\n\tby {hostname} (Hayate) with {proto} id {queue_id}"
    if len(recipients) == 1:
        line += f"\r\n\tfor <{recipients[0]}>"
    line += f"; {rfc5322_date(now)}\r\n"
    return line.encode("utf-8", "surrogateescape")


def add_missing_headers(
    data: bytes, received: bytes, queue_id: str, hostname: str, now: float
) -> tuple[bytes, int]:
    """Prepend ``received``; append Message-ID/Date if missing. Returns (data, Received count)."""
    end = header_block_end(data)
    lower = data[:end].lower()
    extra = b""
    if not has_header(lower, b"message-id:"):
        extra += f"Message-ID: <{queue_id}@{hostname}>\r\n".encode()
    if not has_header(lower, b"date:"):
        extra += f"Date: {rfc5322_date(now)}\r\n".encode()
    hops = count_header(lower, b"received:") + 1
    if extra:
        if end == len(data) and not data.endswith(b"\r\n") and data:
            data += b"\r\n"  # a message with headers only and no final line break
            end = len(data)
        return received + data[:end] + extra + data[end:], hops
    return received + data, hops
