"""The SMTP envelope and what the receiving session knew about its client.

These values travel from a protocol server (SMTP today, the HTTP API later) into ``ingest``.
Addresses are kept as the client wrote them (without angle brackets); the null reverse path
is the empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class Listener(StrEnum):
    """Which front door a message came through; decides the relay rules."""

    MX = "smtp"  # port 25: mail for local domains, no AUTH
    SUBMISSION = "submission"  # port 587: STARTTLS then AUTH
    SUBMISSIONS = "submissions"  # port 465: implicit TLS then AUTH
    LOCAL = "local"  # the CLI (`hayate send`) and generated mail (DSNs)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the receiving side knows about the client; feeds policy and the Received header."""

    listener: Listener
    peer_ip: str
    peer_port: int = 0
    helo: str = ""
    esmtp: bool = True
    tls_version: str | None = None  # e.g. "TLSv1.3" once STARTTLS / implicit TLS is up
    tls_cipher: str | None = None
    auth_user: str | None = None  # account address after a successful AUTH
    relay_allowed: bool = False  # client address is in relay_networks


@dataclass(frozen=True, slots=True)
class Envelope:
    """MAIL FROM and RCPT TO of one transaction, plus the ESMTP parameters that matter later."""

    sender: str  # "" is the null reverse path (bounces)
    recipients: tuple[str, ...]
    smtputf8: bool = False
    body_8bit: bool = False
    envid: str | None = None  # RFC 3461 ENVID
    ret: str | None = None  # RFC 3461 RET=FULL|HDRS
    extra: dict[str, str] = field(default_factory=dict)


def domain_of(address: str) -> str:
    """The lower-cased domain part of ``local@domain`` ('' when there is none)."""
    at = address.rfind("@")
    return address[at + 1 :].lower() if at >= 0 else ""



def nearest_listed(domain: str, table: Mapping[str, T]) -> T | None:
    """The entry of ``table`` (keys lower-case, without a final dot) for ``domain`` or, when
    it has none, for its nearest parent domain: ``news.example.com`` falls back to
    ``example.com``, then ``com``. None when neither it nor a parent is listed."""
    if not table:
        return None
    domain = domain.lower().rstrip(".")
    while domain:
        found = table.get(domain)
        if found is not None:
            return found
        domain = domain.partition(".")[2]
    return None
