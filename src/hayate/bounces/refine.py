"""Second thoughts on a reason, from the context of the reply rather than its words alone.

``classify.reason_from_text`` reads words ("user unknown", "connection timed out"); the same
words mean different things depending on when the remote said them, which code it put on
them, and what the rest of the report says. ``refine`` applies those rules to the reason of a
recipient of a *final* report (delay warnings are split off before, ``hayate.bounces.delay``):

- the SMTP phase: a refusal in reply to MAIL FROM is about our sender ("sender-rejected");
  "user unknown" in reply to DATA comes from a server that accepted the recipient at RCPT TO,
  so a filter refused the message ("filtered");
- a code that contradicts the words: "550 5.7.1 ... User unknown" (the remote's own code
  says policy) is a refusal of a mailbox that may well exist ("filtered"); "551" (RFC 5321:
  user not local) or X.1.6 with words of an unknown user is a moved mailbox ("has-moved");
- "550 : User unknown" without the address is what Japanese carriers answer when the
  recipient's reception filter refuses a sender ("filtered");
- a report that says, for its only recipient, that the account is disabled or suspended
  knows more than the generic "user unknown" its relay quotes ("suspended", soft), unless
  a X.1.x code says the address is bad;
- "host unknown" reported as temporary is a DNS failure, not a verdict ("network-error");
- a final report whose cause is that the remote could not be reached at all (connection
  refused or timed out, no route, X.4.1 "no answer from host") is "expired": such failures
  are temporary, so the sender's MTA retried until its queue lifetime ran out.
"""

from __future__ import annotations

import re

from hayate.bounces.classify import says

_DATA_PHASE_RE = re.compile(
    r"after end of data|in reply to end of data|after data\b|in reply to data\b", re.IGNORECASE
)
# Sendmail pipelines RCPT and DATA: a transcript ">>> DATA / <<< 550 ..." followed by
# "503 need RCPT" or "no valid recipients" shows the 550 answered RCPT TO, not DATA.
_PIPELINED_DATA_RE = re.compile(r">>> DATA")
_RCPT_FAILED_RE = re.compile(r"\b503\b|no valid recipients|need rcpt", re.IGNORECASE)
_MAIL_PHASE_RE = re.compile(r"after mail from|in reply to mail from|>>> MAIL From", re.IGNORECASE)

# "550 : User unknown" with the address left out is what au (KDDI) answers when its
# reception filter refuses a message; an address that does not exist is named in the reply.
_NAMELESS_UNKNOWN_RE = re.compile(r"\b5\d\d : user unknown", re.IGNORECASE)
# The remote's own code says "not authorised / policy" (x.7.x) while its words say "user
# unknown": an access table refused the recipient; the mailbox may well exist.
_POLICY_REPLY_RE = re.compile(
    r"\b5\d\d[ -]5\.7\.\d{1,3}\b[^\n]*\b(?:user|recipient|mailbox)\b", re.IGNORECASE
)
# An enhanced code of the "bad address" family (X.1.x) anywhere in the reply.
_ADDRESS_CODE_RE = re.compile(r"(?<![\d.])[45]\.1\.\d{1,3}\b")
# RFC 5321 551: "User not local; please try <forward-path>".
_NOT_LOCAL_REPLY_RE = re.compile(r"(?<![\w.-])551(?=[ -])")

# The remote could not be reached at all (as opposed to a session that broke off).
_NO_CONNECTION_RE = re.compile(
    r"connection (?:timed out|refused)"
    r"|timed out while connecting"
    r"|did not accept our requests? to connect"
    r"|no route to host"
    r"|(?:host|network) (?:is )?unreachable"
    r"|(?:could not|unable to|can't|cannot|failed to) connect",
    re.IGNORECASE,
)
_BROKEN_SESSION_RE = re.compile(
    r"lost connection|conversation with|while (?:sending|receiving|performing)|reset by peer",
    re.IGNORECASE,
)


def _in_reply_to_data(text: str) -> bool:
    if _DATA_PHASE_RE.search(text):
        return True
    return bool(_PIPELINED_DATA_RE.search(text)) and not _RCPT_FAILED_RE.search(text)


def _moved(status: str, text: str) -> bool:
    return status.endswith(".1.6") or bool(_NOT_LOCAL_REPLY_RE.search(text))


def _unreachable(status: str, text: str) -> bool:
    if status.endswith(".4.1"):
        return True
    return bool(_NO_CONNECTION_RE.search(text)) and not _BROKEN_SESSION_RE.search(text)


def refine(reason: str, text: str, temporary: bool, status: str = "", report: str = "") -> str:
    """The reason after the context rules of the module docstring.

    ``text`` is what the report says about this recipient (the remote's reply and the
    lines around it), ``status`` the enhanced code reported for it, ``report`` the report's
    whole text when the report is about this recipient alone ("" otherwise).
    """
    if reason in ("user-unknown", "host-unknown", "undefined") and _MAIL_PHASE_RE.search(text):
        return "sender-rejected"
    if reason == "user-unknown":
        if (
            _in_reply_to_data(text)
            or _NAMELESS_UNKNOWN_RE.search(text)
            or _POLICY_REPLY_RE.search(text)
        ):
            return "filtered"
        if _moved(status, text):
            return "has-moved"
        if report and says("suspended", report) and not _ADDRESS_CODE_RE.search(
            f"{status} {text}"
        ):
            return "suspended"
    if reason == "host-unknown" and temporary:
        return "network-error"
    if reason == "network-error" and _unreachable(status, text):
        return "expired"
    return reason
