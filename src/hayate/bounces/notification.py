"""Provider notifications in JSON (Amazon SES via SNS e-mail): bounce, complaint, delivery.

SES can send its feedback as an e-mail whose body is the JSON notification
(``notificationType`` Bounce / Complaint / Delivery). Recipients, the bounce type and the
diagnostic code are taken from it; the body text around the JSON is ignored.
"""

from __future__ import annotations

import json
from typing import Any

from hayate.bounces.classify import kind_for, reason_for
from hayate.bounces.dsn import normalise_status
from hayate.bounces.records import BounceKind, BounceRecord


def _json_object(text: str) -> dict[str, Any] | None:
    start = text.find('{"')
    if start < 0 or '"notificationType"' not in text:
        return None
    joined = text[start:]
    decoder = json.JSONDecoder()
    for candidate in (joined, "".join(line.strip() for line in joined.splitlines())):
        try:
            value, _ = decoder.raw_decode(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _rcpts(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        return []
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, str):
            out.append({"emailAddress": item})
    return out


def parse(text: str) -> list[BounceRecord] | None:
    """Records for an SES JSON notification in ``text``; None when it holds none."""
    data = _json_object(text)
    if data is None:
        return None
    kind = str(data.get("notificationType", "")).lower()
    mail = data.get("mail")
    if not isinstance(mail, dict):
        mail = {}
    sender = str(mail.get("source", ""))
    message_id = str(mail.get("messageId", ""))
    records: list[BounceRecord] = []

    def add(item: dict[str, Any], outcome: BounceKind, reason: str, status: str = "",
            reply: str = "") -> None:
        address = str(item.get("emailAddress", "")).lower()
        records.append(BounceRecord(address, outcome, reason, status, reply, sender, message_id))

    if kind == "complaint":
        body = data.get("complaint") or {}
        for r in _rcpts(body.get("complainedRecipients")):
            add(r, "complaint", str(body.get("complaintFeedbackType") or "abuse"))
    elif kind == "delivery":
        body = data.get("delivery") or {}
        for r in _rcpts(body.get("recipients")):
            add(r, "delivered", "delivered", "2.0.0", str(body.get("smtpResponse", "")))
    elif kind == "bounce":
        body = data.get("bounce") or {}
        transient = str(body.get("bounceType", "")).lower() == "transient"
        for r in _rcpts(body.get("bouncedRecipients")):
            diagnostic = str(r.get("diagnosticCode", ""))
            status = normalise_status(str(r.get("status", ""))) or normalise_status(diagnostic)
            reason = reason_for(diagnostic, status)
            add(r, kind_for(reason, status, transient), reason, status, diagnostic)
    return records or None
