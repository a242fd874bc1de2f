"""Failed recipients in a bounce written as prose (qmail, Exim, Sendmail, providers, carriers).

Non-standard bounces differ in wording but share a shape: the failed address appears on a
line of its own or in a sentence, and the lines after it (up to the next failed address)
quote the remote reply or explain the failure. ``chunks(report, exclude)`` cuts the report text
into one :class:`Chunk` per address found, in order, leaving out addresses that are not
recipients (the original sender, the reporting daemon, postmaster contacts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hayate.bounces.message import ADDRESS_RE

# Lines that name someone other than a failed recipient.
_SKIP_LINE_RE = re.compile(
    r"^\s*(?:>?\s*)(?:from|sender|reply-to|return-path|message-id|in-reply-to|references"
    r"|received|mail from|envelope-from|x-[\w-]+|subject|dkim-signature|date)\s*:",
    re.IGNORECASE,
)
_NOT_RECIPIENT_LOCAL = re.compile(
    r"^(?:mailer-daemon|mail-daemon|mailerdaemon|postmaster|double-bounce|bounce[s]?|no-?reply"
    r"|root|hostmaster|abuse)$",
    re.IGNORECASE,
)
_CONTACT_RE = re.compile(
    r"(?:contact|send mail to|e-?mail|write to|reach|notify|please mail|inform)\s+(?:\w+\s+){0,4}"
    r"<?$",
    re.IGNORECASE,
)
_CONTACT_AFTER_RE = re.compile(r">?\s*(?:へ|に|まで)\s*(?:ご連絡|お問い?合わ?せ|連絡)")
_REPLY_CODE_RE = re.compile(r"(?<![\d.])([45])\d\d(?=[ -]|$)")


@dataclass(frozen=True, slots=True)
class Chunk:
    recipient: str
    text: str  # the address's line and the lines that follow it, up to the next recipient


# A line that is nothing but an address ("<a@b>:", "a@b", "a@b [User unknown]") lists a
# failed recipient even when it is also the original's sender (mail to oneself).
_ALONE_RE = re.compile(r"^\s*<?([^\s<>@]+@[A-Za-z0-9.-]+)>?:?\s*(?:\[[^\]]*\]\s*)?$")


def _candidates(line: str, exclude: set[str]) -> list[tuple[int, str]]:
    if _SKIP_LINE_RE.match(line):
        return []
    alone = _ALONE_RE.match(line)
    if alone is not None and not _NOT_RECIPIENT_LOCAL.match(alone.group(1).split("@")[0]):
        exclude = set()
    found: list[tuple[int, str]] = []
    for match in ADDRESS_RE.finditer(line):
        address = match.group(1).strip(".").lower()
        local = address.split("@", 1)[0]
        if address in exclude or _NOT_RECIPIENT_LOCAL.match(local):
            continue
        if _is_contact(line, match.start(), match.end()):
            continue
        # a Message-ID like token in angle brackets after "id" is not an address
        before = line[max(0, match.start() - 20) : match.start()].rstrip("<").rstrip()
        if before.lower().endswith((" id", "message-id", "msgid")):
            continue
        found.append((match.start(), address))
    return found


def _is_contact(line: str, start: int, end: int) -> bool:
    """Is the address at line[start:end] offered as a contact? (bounded look-around)"""
    return bool(
        _CONTACT_RE.search(line[max(0, start - 80) : start])
        or _CONTACT_AFTER_RE.match(line[end : end + 20])
    )


def _contacts(lines: list[str]) -> set[str]:
    """Addresses the report offers as a contact anywhere ("please contact <support@...>")."""
    found: set[str] = set()
    for line in lines:
        for match in ADDRESS_RE.finditer(line):
            if _is_contact(line, match.start(), match.end()):
                found.add(match.group(1).strip(".").lower())
    return found


def chunks(report: str, exclude: set[str]) -> list[Chunk]:
    """One chunk per failed address in ``report``, first appearance order."""
    lines = report.replace("\r\n", "\n").split("\n")
    exclude = exclude | _contacts(lines)
    starts: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        for _, address in _candidates(line, exclude):
            if address not in seen:
                seen.add(address)
                starts.append((index, address))
    result: list[Chunk] = []
    for n, (index, address) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        if end == index:  # two addresses on one line share it and what follows
            end = next((s for s, _ in starts[n + 1 :] if s > index), len(lines))
        first = index
        while first > 0 and lines[first - 1].lstrip().startswith(">>>"):
            first -= 1  # the command this reply answers (Sendmail transcripts)
        text = "\n".join(lines[first:end]).strip()
        result.append(Chunk(recipient=address, text=text))
    return result


def reply_code(text: str) -> str:
    """The first SMTP reply code class in ``text`` ("5" or "4"), else ""."""
    match = _REPLY_CODE_RE.search(text)
    return match.group(1) if match else ""


_QUOTED_REPLY_RE = re.compile(r"(?<![\w.#-])[45]\d\d(?=[ -])")


def remote_reply(text: str) -> str:
    """The remote's reply inside a chunk: from its first SMTP reply code on, else the chunk."""
    match = _QUOTED_REPLY_RE.search(text)
    return squash(text[match.start() :] if match is not None else text)


def squash(text: str, limit: int = 600) -> str:
    """Whitespace collapsed, at most ``limit`` characters (for remote_reply)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
