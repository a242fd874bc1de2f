"""The values a DNS check hands out: a status, one result row, and a record to publish.

A :class:`CheckResult` is one line of ``hayate dns check``: which check, the DNS name it is
about, what it found there, what it expected, and the fix (usually a zone-file line made by
:meth:`Record.zone_line`, ready to paste). ``required`` rows decide the exit status: any
required row that is MISSING, WRONG or ERROR makes the command fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

_TXT_CHUNK = 255  # one <character-string> of a TXT record holds at most 255 bytes


class Status(StrEnum):
    FOUND = "found"  # present and right
    MISSING = "missing"  # nothing published
    WRONG = "wrong"  # published, but not what this server needs
    WARN = "warn"  # works, but weaker than it should be
    INFO = "info"  # for information only (never fails the check)
    ERROR = "error"  # could not be checked (DNS failure, unreachable policy host)

    @property
    def failing(self) -> bool:
        return self in (Status.MISSING, Status.WRONG, Status.ERROR)


@dataclass(frozen=True, slots=True)
class Record:
    """One DNS record to publish."""

    name: str  # fully qualified, without the final dot
    rtype: str  # "TXT", "MX", "A", "PTR", ...
    value: str  # TXT: the text unquoted; others: the RDATA as in a zone file

    def zone_line(self) -> str:
        """``name. IN TYPE value``; TXT text quoted and split into 255-byte strings."""
        value = self.value
        if self.rtype == "TXT":
            value = " ".join(_quote(part) for part in _chunks(self.value))
        return f"{self.name}. IN {self.rtype} {value}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the report."""

    check: str  # "MX", "A", "SPF", "DKIM", "DMARC", "PTR", "FCrDNS", "MTA-STS", "TLS-RPT"
    name: str  # the DNS name (or URL) the row is about
    status: Status
    found: str | None = None  # what is published now (records joined by newlines)
    expected: str | None = None  # what this server needs there
    fix: str | None = None  # what to publish (zone-file line or file content)
    detail: str = ""  # why the status is what it is, in words
    required: bool = True  # False: informative only, never changes the exit status

    @property
    def failing(self) -> bool:
        return self.required and self.status.failing

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "name": self.name,
            "status": self.status.value,
            "found": self.found,
            "expected": self.expected,
            "fix": self.fix,
            "detail": self.detail,
            "required": self.required,
        }


def _chunks(text: str) -> list[str]:
    data = text.encode()
    if len(data) <= _TXT_CHUNK:
        return [text]
    parts: list[str] = []
    while data:
        cut = min(_TXT_CHUNK, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never split a UTF-8 sequence
        parts.append(data[:cut].decode())
        data = data[cut:]
    return parts


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
