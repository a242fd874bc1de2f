"""Delay warnings: reports that a message is late but still queued, so not a bounce.

An MTA that cannot deliver for a while (4 hours for Sendmail and Postfix, a day for Exim) may
tell the sender so, and keeps trying. Such a report is not a failure of the address: the
message may still arrive, and the final word comes later (a delivery, or a bounce when the
queue lifetime runs out). ``hayate bounces parse`` reports each recipient of a warning as
kind ``soft`` (a temporary failure, as Sisimai and the relay services report it) with reason
:data:`DELAYED`; the status and remote reply say why it is late. The bounce processor and the
suppression list go by the reason: a delay warning is logged, never counted as a bounce.

How a warning is recognised, most reliable first:

1. the recipient's RFC 3464 block says ``Action: delayed`` (and ``failed`` means final,
   whatever the rest of the report says);
2. without an Action field (prose reports), the report says it is a warning — in a header
   (Sendmail's ``Auto-Submitted: auto-generated (warning-timeout)``, subjects such as
   "Delivery Status Notification (Delay)", "Warning: could not send message for past 4
   hours", "Delivery delayed") or in its text ("THIS IS A WARNING MESSAGE ONLY", "only a
   temporary failure report", "has not yet been delivered", "will be retried for 2 more
   days") — and the failure it quotes for the recipient is not permanent (no 5.x.x status,
   no 5xx reply).
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from hayate.bounces.message import header

DELAYED: Final = "delayed"

# Subjects that MTAs give their delay warnings (anchored: a bounce's subject often ends with
# the original subject, which may say anything).
_SUBJECT_RE = re.compile(
    r"^\s*(?:delivery delayed\b|delayed mail\b|warning\b\W{0,3}(?:could not send|message \S+"
    r" delayed))"
    r"|^\s*delivery status notification \(delay\)"
    r"|^\s*delivery (?:status )?notification:\s*(?:delivery has been )?(?:delayed|warning)\b",
    re.IGNORECASE,
)
# What the warnings say about themselves in their text.
_TEXT_RE = re.compile(
    r"\bwarning (?:message )?only\b"
    r"|only a temporary failure report"
    r"|(?:do not|don't|no) need to re-?send"
    r"|has not yet been delivered"
    r"|delivery (?:to the following recipients? )?(?:has been|was) delayed"
    r"|(?:message|mail) (?:is|has been) delayed for more than"
    r"|will be retried (?:for|until)"
    r"|will keep trying until"
    r"|still being retried",
    re.IGNORECASE,
)


def says_warning(msg: Message, report: str) -> bool:
    """Does the report present itself as a delay warning (headers or its own text)?"""
    if "warning" in header(msg, "Auto-Submitted").lower():
        return True
    if _SUBJECT_RE.search(header(msg, "Subject")):
        return True
    return bool(_TEXT_RE.search(report))
