"""Delivery status notifications we generate (RFC 3464), and the rule for when not to.

Pure functions, no I/O. :func:`build_dsn` turns the failed (or delayed) recipients of one
queued message into a complete ``multipart/report; report-type=delivery-status`` message with
CRLF line endings, ready to hand to ``ingest`` with the null reverse path as its envelope
sender (that part is the caller's job). The report has three parts:

1. ``text/plain``: a short explanation for a human, listing each recipient and the reply;
2. ``message/delivery-status``: the machine-readable fields, one per-message group and one
   group per recipient (Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, ...);
3. the original message's header section as ``text/rfc822-headers``, or with ``include_full``
   the whole message as ``message/rfc822`` when it is at most ``full_limit`` bytes.

Internationalised mail (RFC 6533): when an address, a diagnostic or the original header
section is not ASCII, the report uses ``message/global-delivery-status`` with ``utf-8``
address types, ``message/global-headers`` and ``message/global`` instead, all in raw UTF-8
(8bit); delivering such a report needs SMTPUTF8, as did the original message.

:func:`should_bounce` says whether a failure deserves a DSN at all: never to the null sender or
a mailer-daemon, and never about a message that is itself a report or an automatic reply, so
that two systems can never bounce at each other forever.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import Parser
from email.utils import format_datetime
from typing import Literal

CRLF = "\r\n"
FULL_LIMIT = 50_000  # bytes: a larger original is returned as headers only (like bounce_size_limit)
FOLD_WIDTH = 78  # preferred maximum length of a header line (RFC 5322 2.1.1)
HARD_WIDTH = 998  # maximum length of any line (RFC 5322 2.1.1)

_STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_SMTP_REPLY_RE = re.compile(r"^[2-5]\d\d(?:[ -]|$)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_ID_UNSAFE_RE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
_DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "double-bounce"})


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient to report on.

    ``status`` is the RFC 3463 enhanced code ("5.1.1"); ``diagnostic`` is the remote reply as
    the remote wrote it ("550 5.1.1 <x@y>: user unknown") or our own text when there was no
    remote reply ("connect to mx.example.net[192.0.2.1]:25: Connection refused").
    ``remote_mta`` is a host name, or a relay as delivery reports it ("mx.example.net[ip]:25").
    """

    address: str
    status: str
    diagnostic: str
    remote_mta: str | None = None
    last_attempt: float | None = None
    original_recipient: str | None = None


def build_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    original_queue_id: str,
    arrival_time: float,
    failures: list[FailedRecipient],
    original_message: bytes,
    action: Literal["failed", "delayed"] = "failed",
    include_full: bool = False,
    now: float | None = None,
    envid: str | None = None,
    retry_until: float | None = None,
    full_limit: int = FULL_LIMIT,
) -> bytes:
    """The complete DSN message (headers and body, CRLF line endings) as bytes.

    ``now`` defaults to ``arrival_time`` when not given, so that the output is a pure function
    of the arguments; the queue passes its clock's time. ``retry_until`` (delayed reports
    only) becomes Will-Retry-Until. Raises ValueError for the null sender (nobody to tell) or
    an empty ``failures`` list.
    """
    sender = original_sender.strip().strip("<>")
    if not sender:
        raise ValueError("no DSN can be sent to the null reverse path")
    if not failures:
        raise ValueError("a DSN needs at least one recipient to report on")
    when = arrival_time if now is None else now
    headers = _header_section(original_message)
    status_texts = [sender, reporting_mta] + [
        s
        for f in failures
        for s in (f.address, f.diagnostic, f.original_recipient or "", f.remote_mta or "")
    ]
    is_global = not all(s.isascii() for s in status_texts) or not headers.isascii()

    whole = include_full and len(original_message) <= full_limit
    returned = _returned_part(original_message, headers, whole, is_global)
    explanation = _explanation(reporting_mta, failures, action, retry_until, whole)
    status = _delivery_status(
        reporting_mta=reporting_mta,
        queue_id=original_queue_id,
        sender=sender,
        arrival_time=arrival_time,
        failures=failures,
        action=action,
        envid=envid,
        retry_until=retry_until,
        is_global=is_global,
    )

    parts = [
        _part(
            [
                "Content-Description: Notification",
                "Content-Type: text/plain; charset=utf-8",
                f"Content-Transfer-Encoding: {_cte(explanation)}",
            ],
            explanation,
        ),
        _part(
            [
                "Content-Description: Delivery report",
                "Content-Type: message/"
                + ("global-delivery-status" if is_global else "delivery-status"),
                f"Content-Transfer-Encoding: {_cte(status)}",
            ],
            status,
        ),
        returned,
    ]
    boundary = _boundary(original_queue_id, when, action, failures, parts)
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    top = [
        f"From: Mail Delivery System <MAILER-DAEMON@{_clean(reporting_mta)}>",
        _fold(f"To: <{_clean(sender)}>"),
        f"Subject: {subject}",
        f"Date: {_date(when)}",
        f"Message-ID: {_message_id(reporting_mta, original_queue_id, when, action, failures)}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-replied",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f' boundary="{boundary}"',
        f"Content-Transfer-Encoding: {'8bit' if is_global or not _all_ascii(parts) else '7bit'}",
    ]
    # Each part ends with CRLF, which doubles as the CRLF that starts the next delimiter.
    body = [f"This is a MIME-encapsulated delivery status report.{CRLF}{CRLF}"]
    body.extend(f"--{boundary}{CRLF}{part}" for part in parts)
    body.append(f"--{boundary}--{CRLF}")
    return (CRLF.join(top) + CRLF + CRLF + "".join(body)).encode("utf-8", "surrogateescape")


def should_bounce(sender: str, original_headers: bytes) -> bool:
    """Whether a failure of this message may be reported to ``sender`` with a DSN.

    False for the null reverse path, for mailer-daemon senders, and for messages that are
    reports or automatic replies themselves (``multipart/report``, ``message/*delivery-status``
    or an ``Auto-Submitted`` value other than ``no``): a bounce is never sent about a bounce.
    ``original_headers`` may be the header section or the whole message.
    """
    address = sender.strip().strip("<>").strip()
    if not address:
        return False
    local = address[: address.rfind("@")] if "@" in address else address
    if local.strip('"').lower() in _DAEMON_LOCALPARTS:
        return False
    parsed = Parser(policy=policy.compat32).parsestr(
        _header_section(original_headers), headersonly=True
    )
    ctype = parsed.get_content_type()
    if ctype == "multipart/report" or ctype.endswith("delivery-status"):
        return False
    for value in parsed.get_all("Auto-Submitted") or []:
        keyword = re.split(r"[\s;(]", str(value).strip(), maxsplit=1)[0].lower()
        if keyword != "no":
            return False
    return True


# -- the three parts ---------------------------------------------------------------------------


def _explanation(
    reporting_mta: str,
    failures: list[FailedRecipient],
    action: str,
    retry_until: float | None,
    whole: bool,
) -> str:
    host = _clean(reporting_mta)
    attached = "your message" if whole else "your message's header section"

    if action == "failed":
        intro = (
            f"This is the mail server at {host}. Your message could not be delivered to "
            "the recipients listed below, and no further attempts will be made. The replies "
            f"we received are shown under each address. A copy of {attached} is attached."
        )
    else:
        until = f" until {_date(retry_until)}" if retry_until is not None else ""
        intro = (
            f"This is the mail server at {host}. Your message has not yet been delivered to "
            f"the recipients listed below. The server will keep trying{until}; you will get "
            "another notice only if delivery fails for good. There is no need to send the "
            "message again."
        )
    lines = [*textwrap.wrap(intro, 72), ""]
    for f in failures:
        lines.append(f"<{_clean(f.address)}>:")
        where = _remote_host(f.remote_mta)
        reason = f"{where} said: {_clean(f.diagnostic)}" if where else _clean(f.diagnostic)
        lines.extend(
            textwrap.wrap(
                reason,
                72,
                initial_indent="    ",
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or ["    (no reply recorded)"]
        )
        lines.append("")
    lines.pop()
    return "".join(_hard_wrap(line) + CRLF for line in lines)


def _delivery_status(
    *,
    reporting_mta: str,
    queue_id: str,
    sender: str,
    arrival_time: float,
    failures: list[FailedRecipient],
    action: str,
    envid: str | None,
    retry_until: float | None,
    is_global: bool,
) -> str:
    per_message = [f"Reporting-MTA: dns; {_clean(reporting_mta)}"]
    per_message.append(f"X-Hayate-Queue-ID: {_clean(queue_id)}")
    if envid:
        per_message.append(f"Original-Envelope-Id: {_clean(envid)}")
    per_message.append(f"X-Hayate-Sender: {_addr_field(sender, is_global)}")
    per_message.append(f"Arrival-Date: {_date(arrival_time)}")
    groups = [per_message]
    default_status = "5.0.0" if action == "failed" else "4.0.0"
    for f in failures:
        fields = [f"Final-Recipient: {_addr_field(f.address, is_global)}"]
        if f.original_recipient:
            fields.append(f"Original-Recipient: {_addr_field(f.original_recipient, is_global)}")
        fields.append(f"Action: {action}")
        status = f.status.strip()
        fields.append(f"Status: {status if _STATUS_RE.match(status) else default_status}")
        host = _remote_host(f.remote_mta)
        if host:
            fields.append(f"Remote-MTA: dns; {host}")
        diagnostic = _clean(f.diagnostic)
        if diagnostic:
            kind = "smtp" if _SMTP_REPLY_RE.match(diagnostic) else "X-Hayate"
            fields.append(f"Diagnostic-Code: {kind}; {diagnostic}")
        if f.last_attempt is not None:
            fields.append(f"Last-Attempt-Date: {_date(f.last_attempt)}")
        if action == "delayed" and retry_until is not None:
            fields.append(f"Will-Retry-Until: {_date(retry_until)}")
        groups.append(fields)
    return CRLF.join("".join(_fold(field) + CRLF for field in group) for group in groups)


def _returned_part(original: bytes, headers: str, whole: bool, is_global: bool) -> str:
    if whole:
        content = _crlf(original.decode("utf-8", "surrogateescape"))
        if not content.endswith(CRLF):
            content += CRLF
        kind = "message/global" if is_global else "message/rfc822"
        return _part(
            [
                "Content-Description: Undelivered Message",
                f"Content-Type: {kind}",
                f"Content-Transfer-Encoding: {_cte(content)}",
            ],
            content,
        )
    kind = "message/global-headers" if is_global else "text/rfc822-headers"
    return _part(
        [
            "Content-Description: Undelivered Message Headers",
            f"Content-Type: {kind}",
            f"Content-Transfer-Encoding: {_cte(headers)}",
        ],
        headers,
    )


# -- helpers -----------------------------------------------------------------------------------


def _part(headers: list[str], body: str) -> str:
    return CRLF.join(headers) + CRLF + CRLF + body


def _header_section(message: bytes) -> str:
    """The header section of ``message`` (up to the blank line), CRLF-terminated lines."""
    text = _crlf(message.decode("utf-8", "surrogateescape"))
    end = text.find(CRLF + CRLF)
    if text.startswith(CRLF):
        return ""
    section = text if end < 0 else text[: end + 2]
    if section and not section.endswith(CRLF):
        section += CRLF
    return section


def _crlf(text: str) -> str:
    """Every line ending (CRLF, bare LF, bare CR) made CRLF."""
    return re.sub(r"\r\n|\r|\n", CRLF, text)


def _clean(text: str) -> str:
    """One line of text: runs of control characters (CR, LF, TAB...) become one space."""
    return _CONTROL_RE.sub(" ", text).strip()


def _addr_field(address: str, is_global: bool) -> str:
    address = _clean(address).strip("<>")
    if is_global and not address.isascii():
        return f"utf-8; {address}"
    return f"rfc822; {address}"


def _remote_host(remote: str | None) -> str:
    """'mx.example.net[192.0.2.1]:25' → 'mx.example.net'; '[192.0.2.1]:25' → '192.0.2.1'."""
    if not remote:
        return ""
    remote = _clean(remote)
    if remote.lower() in {"none", "local"}:
        return ""
    name, bracket, rest = remote.partition("[")
    if name:
        return name.strip()
    if bracket:
        return rest.partition("]")[0].strip()
    return remote


def _fold(line: str) -> str:
    """Fold one header field at spaces so lines stay near FOLD_WIDTH, never past HARD_WIDTH."""
    if len(line) <= FOLD_WIDTH:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= FOLD_WIDTH or not current:
            current = candidate
        else:
            out.append(current)
            current = " " + word
    out.append(current)
    lines: list[str] = []
    for piece in out:
        # A single word longer than the hard limit is split; nothing else can be done.
        while len(piece) > HARD_WIDTH:
            lines.append(piece[:HARD_WIDTH])
            piece = " " + piece[HARD_WIDTH:]
        lines.append(piece)
    return CRLF.join(lines)


def _hard_wrap(line: str) -> str:
    if len(line) <= HARD_WIDTH:
        return line
    return CRLF.join(line[i : i + HARD_WIDTH] for i in range(0, len(line), HARD_WIDTH))


def _date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC).replace(microsecond=0))


def _cte(text: str) -> str:
    return "7bit" if text.isascii() else "8bit"


def _all_ascii(parts: Iterable[str]) -> bool:
    return all(p.isascii() for p in parts)


def _digest(*items: object) -> str:
    return hashlib.sha256(repr(items).encode("utf-8", "surrogateescape")).hexdigest()


def _message_id(
    reporting_mta: str, queue_id: str, when: float, action: str, failures: list[FailedRecipient]
) -> str:
    token = _digest(queue_id, when, action, [f.address for f in failures])[:16]
    qid = _ID_UNSAFE_RE.sub("", queue_id).strip(".") or "dsn"
    host = _ID_UNSAFE_RE.sub("", reporting_mta).strip(".") or "localhost"
    return f"<{token}.{qid}.{action}@{host}>"


def _boundary(
    queue_id: str, when: float, action: str, failures: list[FailedRecipient], parts: list[str]
) -> str:
    for attempt in range(100):
        token = _digest(queue_id, when, action, [f.address for f in failures], attempt)
        boundary = "=_hayate_dsn_" + token[:24]
        if not any(boundary in p for p in parts):
            return boundary
    raise RuntimeError("cannot find a MIME boundary absent from the report")  # pragma: no cover
