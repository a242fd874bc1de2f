"""RFC 3464 delivery-status fields: per-recipient blocks of a DSN, parsed from text.

The same reader serves a proper ``message/delivery-status`` part and the many reports that
carry the fields elsewhere (a text part, or a body whose MIME boundary is broken): blocks are
separated by blank lines, folded lines are joined, and a block that names a recipient
(``Final-Recipient`` or ``Original-Recipient``) becomes one :class:`DsnRecipient`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hayate.bounces.message import first_address

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})\s*:\s?(.*)$")
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    recipient: str
    action: str = ""  # failed | delayed | delivered | relayed | expanded (lower-case)
    status: str = ""  # "5.1.1"
    diagnostic: str = ""  # Diagnostic-Code without its type prefix ("smtp;")
    remote_mta: str = ""
    original_envelope_id: str = ""


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        if match is None:
            last = ""
            continue
        last = match.group(1).lower()
        if (
            last in ("final-recipient", "original-recipient")
            and last in current
            and ("action" in current or "status" in current)
        ):
            # A second recipient field of the same name: a broken report without blank
            # lines between recipients. (Original-Recipient after Final-Recipient, in any
            # order with Action and Status, is the same recipient: Amazon SES writes
            # "Action", "Final-Recipient", "Original-Recipient", "Diagnostic-Code", "Status".)
            blocks.append(current)
            current = {}
        current[last] = current.get(last) or match.group(2).strip()
    if current:
        blocks.append(current)
    return blocks


def _strip_type(value: str) -> str:
    """``rfc822; a@b`` → ``a@b``; ``smtp; 550 ...`` → ``550 ...``."""
    head, sep, tail = value.partition(";")
    if sep and re.fullmatch(r"\s*[A-Za-z0-9-]{2,12}\s*", head):
        return tail.strip()
    return value.strip()


def _status_comment(value: str) -> str:
    """``4.0.0 (host name lookup failure)`` → the words in parentheses."""
    match = re.search(r"\((.+)\)", value)
    return match.group(1).strip() if match else ""


def normalise_status(value: str) -> str:
    match = _STATUS_RE.search(value)
    return ".".join(match.groups()) if match else ""


def parse_fields(text: str) -> list[DsnRecipient]:
    """The recipient blocks found in ``text`` (empty when it holds no DSN fields)."""
    envelope_id = ""
    found: list[DsnRecipient] = []
    for block in _blocks(text):
        if "original-envelope-id" in block:
            envelope_id = block["original-envelope-id"].strip()
        raw_rcpt = block.get("final-recipient") or block.get("original-recipient") or ""
        recipient = first_address(_strip_type(raw_rcpt))
        if not recipient:
            if "x-actual-recipient" in block:
                recipient = first_address(block["x-actual-recipient"])
            if not recipient:
                continue
        found.append(
            DsnRecipient(
                recipient=recipient,
                action=block.get("action", "").strip().lower().split(" ")[0],
                status=normalise_status(block.get("status", "")),
                diagnostic=_strip_type(block.get("diagnostic-code", ""))
                or _status_comment(block.get("status", "")),
                remote_mta=_strip_type(block.get("remote-mta", "")),
                original_envelope_id=envelope_id,
            )
        )
    return found
