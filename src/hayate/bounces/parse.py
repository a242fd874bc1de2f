"""``parse_message(bytes) -> list[BounceRecord]``: what one inbound report says, per recipient.

The order of the checks is the order of confidence:

1. a feedback-loop report (ARF, RFC 5965) → "complaint" records;
2. a provider JSON notification (Amazon SES) → what it says;
3. RFC 3464 delivery-status fields (in their MIME part, or anywhere in the text when the MIME
   is broken) → one record per recipient block; the reason comes from the Diagnostic-Code,
   else from the prose the report prints about that recipient, else from the status code.
   A recipient whose block says ``Action: delayed`` (or any recipient of a report that calls
   itself a warning, when its failure is not permanent) is a delay warning, not a bounce:
   kind "soft" (a temporary failure), reason "delayed" (``hayate.bounces.delay``);
4. an auto-reply or vacation notice that is not a delivery report → "auto-reply" for its
   sender;
5. a prose bounce (qmail, Exim, Sendmail, providers, carriers): the failed addresses in the
   report text and the words after each of them;
6. nothing recognised → one "unknown" record with an empty recipient, still carrying the
   original's envelope sender and Message-ID when the returned message shows them (VERP).

Every record carries ``original_sender`` (the returned message's Return-Path) and
``original_message_id`` when known. Parsing never raises: a message that breaks the parser
comes back as "unknown".
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import Message

from hayate.bounces import arf, notification
from hayate.bounces.autoreply import is_auto_reply
from hayate.bounces.classify import kind_for, reason_from_status, reason_from_text
from hayate.bounces.delay import DELAYED, says_warning
from hayate.bounces.dsn import DsnRecipient, normalise_status, parse_fields
from hayate.bounces.message import (
    addresses,
    content_type,
    fields_text,
    first_address,
    header,
    load,
    outer_parts,
    part_text,
    raw_body,
)
from hayate.bounces.original import Original, Split, split
from hayate.bounces.prose import Chunk, chunks, remote_reply, reply_code, squash
from hayate.bounces.records import BounceRecord
from hayate.bounces.refine import refine

_DAEMON_RE = re.compile(
    r"mailer-daemon|mail-daemon|postmaster|mail delivery|mail administrator|mail system",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|not delivered|delivery (?:status|failure|failed|notification|has failed"
    r"|problem|report|error)|failure notice|returned mail|mail delivery|could not be delivered"
    r"|non-?delivery|nondeliverable|delivery unsuccessful|rejected|bounce|mail system error"
    r"|permanent error|failed|returned to sender|warning: could not|error sending|loop alert"
    r"|配信|不達|エラー",
    re.IGNORECASE,
)
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_DELIVERED_ACTIONS = ("delivered", "relayed", "expanded", "deliverable")
_TEMPORARY_RE = re.compile(
    r"temporar|try again|will (?:be )?retr|still trying|delayed|deferred", re.IGNORECASE
)


def parse_message(data: bytes) -> list[BounceRecord]:
    """One record per recipient the message reports on (never empty, never raises)."""
    try:
        return _parse(load(data))
    except Exception:
        return [BounceRecord(recipient="", kind="unknown", reason="undefined")]


def _parse(msg: Message) -> list[BounceRecord]:
    parts = split(msg)
    original = parts.original
    if arf.is_feedback(msg):
        return arf.parse(msg, original)
    records = notification.parse(parts.report)
    if records is None:
        records = _from_dsn(msg, parts)
    if not records and not _says_bounce(msg) and is_auto_reply(msg):
        records = [_auto_reply(msg)]
    if not records:
        records = _from_prose(msg, parts)
    if not records:
        records = [BounceRecord(recipient="", kind="unknown", reason="undefined")]
    return [_with_original(r, original) for r in records]


def _with_original(record: BounceRecord, original: Original) -> BounceRecord:
    return replace(
        record,
        original_sender=record.original_sender or original.sender,
        original_message_id=record.original_message_id or original.message_id,
    )


def _says_bounce(msg: Message) -> bool:
    """From a mail daemon, or a subject that announces a delivery failure."""
    if _DAEMON_RE.search(header(msg, "From")):
        return True
    return bool(_BOUNCE_SUBJECT_RE.search(header(msg, "Subject")))


def _looks_like_bounce(msg: Message) -> bool:
    """``_says_bounce`` or a null return path (auto-replies have one too, RFC 3834)."""
    if _says_bounce(msg):
        return True
    return msg.get("Return-Path") is not None and msg.get("Return-Path", "").strip() in ("<>", "")


def _auto_reply(msg: Message) -> BounceRecord:
    sender = first_address(header(msg, "From")) or first_address(header(msg, "Reply-To"))
    return BounceRecord(recipient=sender, kind="auto-reply", reason="vacation")


# --- RFC 3464 ------------------------------------------------------------------------------


def _dsn_recipients(msg: Message) -> list[DsnRecipient]:
    found: list[DsnRecipient] = []
    for part in outer_parts(msg):
        if content_type(part) in _DSN_TYPES:
            found += parse_fields(fields_text(part))
    if found:
        return found
    texts = [part_text(p) for p in outer_parts(msg) if content_type(p).startswith("text/")]
    for text in [*texts, raw_body(msg)]:
        lowered = text.lower()
        if "final-recipient" in lowered or "original-recipient" in lowered:
            found = parse_fields(text)
            if found:
                return found
    return []


def _from_dsn(msg: Message, parts: Split) -> list[BounceRecord]:
    dsn = _dsn_recipients(msg)
    if not dsn:
        return []
    prose = {c.recipient: c for c in chunks(parts.report, _not_recipients(msg, parts.original))}
    # The report's prose as a whole speaks for a recipient only when it is the only one.
    single = len({e.recipient for e in dsn}) == 1
    warning = says_warning(msg, parts.report)
    records: list[BounceRecord] = []
    seen: set[str] = set()
    for entry in dsn:
        if entry.recipient in seen:
            continue
        seen.add(entry.recipient)
        chunk = prose.get(entry.recipient)
        records.append(_dsn_record(entry, chunk, parts.report if single else "", warning))
    return records


def _delay_record(recipient: str, status: str, reply: str) -> BounceRecord:
    """A delay warning for ``recipient``: a temporary failure, the message is still queued."""
    return BounceRecord(
        recipient=recipient, kind="soft", reason=DELAYED, status=status,
        remote_reply=squash(reply),
    )


def _dsn_record(
    entry: DsnRecipient, chunk: Chunk | None, report: str, warning: bool
) -> BounceRecord:
    chunk_text = chunk.text if chunk else ""
    reply = entry.diagnostic or remote_reply(chunk_text)
    if entry.action in _DELIVERED_ACTIONS:
        return BounceRecord(
            recipient=entry.recipient,
            kind="delivered",
            reason="delivered",
            status=entry.status,
            remote_reply=reply,
        )
    status = _specific_status(entry.status, entry.diagnostic)
    if not status or status.endswith(".0.0"):
        status = _specific_status(status, chunk_text)
    if entry.action == "delayed" or (
        not entry.action and warning and not status.startswith("5")
    ):
        return _delay_record(entry.recipient, status, reply)
    reason = (
        reason_from_text(entry.diagnostic)
        or reason_from_text(chunk_text)
        or reason_from_status(status)
        or reason_from_text(report)
        or "undefined"
    )
    temporary = status.startswith("4")
    reason = refine(reason, f"{entry.diagnostic}\n{chunk_text}", temporary, status, report)
    return BounceRecord(
        recipient=entry.recipient,
        kind=kind_for(reason, status, temporary),
        reason=reason,
        status=status,
        remote_reply=squash(reply),
    )


_REPLY_STATUS_RE = re.compile(r"(?<![\w.])[45]\d\d[ -]'?([245]\.\d{1,3}\.\d{1,3})\b")


def _specific_status(field: str, reply: str) -> str:
    """The DSN's Status, or the remote's own code when the Status says only "x.0.0".

    Reporting MTAs often put 5.0.0 or 4.0.0 on whatever the remote answered; the reply
    ("550 5.7.1 ...") is the more precise code of the same class. A code right after an SMTP
    reply code is the remote's own and wins over one in a relay's summary around it
    ("5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'").
    """
    after_code = _REPLY_STATUS_RE.search(reply)
    quoted = after_code.group(1) if after_code else normalise_status(reply)
    if not field:
        return quoted
    if field.endswith(".0.0") and quoted[:1] == field[:1] and not quoted.endswith(".0.0"):
        return quoted
    return field


# --- prose bounces ---------------------------------------------------------------------------


def _not_recipients(msg: Message, original: Original) -> set[str]:
    exclude = set(addresses(header(msg, "From") + " " + header(msg, "To")))
    exclude.update(a for a in (original.sender, original.from_) if a)
    return exclude - set(original.to)


def _from_prose(msg: Message, parts: Split) -> list[BounceRecord]:
    report = parts.report
    warning = says_warning(msg, report)
    bouncy = _looks_like_bounce(msg)
    report_reason = reason_from_text(report)
    if not bouncy and not report_reason:
        return []
    found = chunks(report, _not_recipients(msg, parts.original))
    if len(found) > 1:
        # several recipients: only the words before the first one speak for all of them
        report_reason = reason_from_text(report[: report.find(found[0].text)])
    if not found:
        found = [Chunk(recipient=a, text="") for a in parts.original.to]
    records: list[BounceRecord] = []
    for chunk in found:
        # The line that names the address usually holds the reply; what follows may be
        # about the next attempt or host, so it is read first and alone.
        head = chunk.text.split("\n", 1)[0]
        status = normalise_status(head) or normalise_status(chunk.text)
        code = reply_code(head) or reply_code(chunk.text)
        reason = (
            reason_from_text(head)
            or reason_from_text(chunk.text)
            or reason_from_status(status)
            or report_reason
            or reason_from_status(normalise_status(report))
            or "undefined"
        )
        if not status:
            status = normalise_status(report)
        said = head if reply_code(head) else chunk.text
        if warning and not status.startswith("5") and code != "5":
            records.append(_delay_record(chunk.recipient, status, remote_reply(chunk.text)))
            continue
        temporary = status.startswith("4") or code == "4" or bool(_TEMPORARY_RE.search(said))
        single = report if len(found) == 1 else ""
        # a recipient known only from the original's To: the report's words are about it
        reason = refine(reason, chunk.text or single, temporary, status, single)
        records.append(
            BounceRecord(
                recipient=chunk.recipient,
                kind=kind_for(reason, status, temporary),
                reason=reason,
                status=status,
                remote_reply=remote_reply(chunk.text),
            )
        )
    return records
