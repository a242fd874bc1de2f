"""Feedback-loop reports (RFC 5965 ARF, and the plain "complaint about message" forwards).

One complaint record per complained-about recipient: the report's ``Original-Rcpt-To``
fields, else the To of the attached original message, else one record with an empty
recipient (the report hides who complained; the VERP return path of the original can still
identify them). The reason is the Feedback-Type ("abuse", "fraud", "not-spam", ...).
"""

from __future__ import annotations

import re
from email.message import Message

from hayate.bounces.message import (
    addresses,
    content_type,
    fields_text,
    first_address,
    header,
    outer_parts,
    walk,
)
from hayate.bounces.original import Original
from hayate.bounces.records import BounceRecord

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$", re.MULTILINE)
_COMPLAINT_SUBJECT_RE = re.compile(
    r"complaint about message|abuse report|feedback report|spam report|\bfbl\b",
    re.IGNORECASE,
)


def _report_part(msg: Message) -> Message | None:
    for part in outer_parts(msg):
        if content_type(part) == "message/feedback-report":
            return part
    return None


def is_feedback(msg: Message) -> bool:
    """An ARF report, or a forwarded original under a complaint subject."""
    if _report_part(msg) is not None:
        return True
    if "feedback-report" in str(msg.get("Content-Type", "")).lower():
        return True
    has_original = any(content_type(p) == "message/rfc822" for p in walk(msg))
    return has_original and bool(_COMPLAINT_SUBJECT_RE.search(header(msg, "Subject")))


def parse(msg: Message, original: Original) -> list[BounceRecord]:
    part = _report_part(msg)
    fields: dict[str, list[str]] = {}
    if part is not None:
        for name, value in _FIELD_RE.findall(fields_text(part)):
            fields.setdefault(name.lower(), []).append(value.strip())
    feedback_type = (fields.get("feedback-type") or ["abuse"])[0].lower() or "abuse"
    recipients: list[str] = []
    for value in fields.get("original-rcpt-to", []) + fields.get("removal-recipient", []):
        recipients += [a for a in addresses(value) if a not in recipients]
    if not recipients:
        recipients = [a for a in original.to if "@" in a]
    sender = original.sender or first_address(" ".join(fields.get("original-mail-from", [])))
    return [
        BounceRecord(
            recipient=rcpt,
            kind="complaint",
            reason=feedback_type,
            original_sender=sender,
            original_message_id=original.message_id,
        )
        for rcpt in (recipients or [""])
    ]
