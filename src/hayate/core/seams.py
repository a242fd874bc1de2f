"""The interfaces (typing.Protocol) between layers. Only the runtime picks implementations.

SMTP server  ──► SmtpPolicy (may this client send from/to these addresses?) and
                 MessageSink (ingest: make it durable, answer 250 with a queue id)
queue        ──► DeliveryAgent (try one message to one destination, return per-recipient results)
delivery     ──► MxResolver (DNS)
auth         ──► TxtResolver (SPF, DKIM, DMARC, ARC lookups through the cached resolver)
queue        ──► SuppressionList (skip suppressed recipients), ReturnPath (VERP),
                 EventSink (record every attempt and outcome, batched)
everything   ──► Clock (a fake one in tests that need to skip days)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hayate.core.envelope import Envelope, SessionInfo
from hayate.core.events import DeliveryEvent
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock, like time.time())."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        import time

        return time.time()


class SmtpPolicy(Protocol):
    """Decisions the SMTP server asks for at each phase; None means "go on"."""

    async def authenticate(self, username: str, password: str) -> str | None:
        """Check a password; returns the canonical account address or None."""
        ...

    async def check_sender(self, session: SessionInfo, sender: str) -> SmtpReply | None:
        """MAIL FROM: may this session use this envelope sender?"""
        ...

    async def check_recipient(
        self,
        session: SessionInfo,
        sender: str,
        recipient: str,
        declared_size: int | None = None,
    ) -> SmtpReply | None:
        """RCPT TO: relay control, unknown local users, quota."""
        ...


class MessageSink(Protocol):
    """Ingest: the one writer of new mail."""

    async def accept(self, session: SessionInfo, envelope: Envelope, data: bytes) -> SmtpReply:
        """Make the message durable and answer 250 with its queue id, or raise SmtpError.

        ``data`` is the message as received after dot-unstuffing, lines ending in CRLF,
        without the terminating ".".
        """
        ...


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str  # lower case, no trailing dot


@dataclass(frozen=True, slots=True)
class MxAnswer:
    """The MX hosts of a domain in the order to try them.

    ``null_mx`` is RFC 7505 ("0 ."): the domain accepts no mail. ``implicit`` is True when
    the domain has no MX and the domain itself (its A/AAAA) is the only host (RFC 5321 5.1).
    """

    domain: str
    hosts: tuple[MxHost, ...]
    null_mx: bool = False
    implicit: bool = False


class DnsError(Exception):
    """A DNS lookup failed. ``temporary`` failures are retried, permanent ones bounce."""

    def __init__(self, message: str, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class MxResolver(Protocol):
    async def resolve_mx(self, domain: str) -> MxAnswer:
        """MX hosts sorted by preference; raises DnsError (NXDOMAIN → permanent)."""
        ...

    async def resolve_addresses(self, host: str) -> list[str]:
        """A then AAAA addresses of ``host``; raises DnsError."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One message to a group of recipients that share a destination."""

    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    destination: str  # queue key: the recipients' domain, or the transport nexthop
    nexthop: str | None = None  # "host:port" from a transport rule: connect there, no MX lookup
    smtputf8: bool = False
    body_8bit: bool = False
    envid: str | None = None
    # Chosen by the scheduler's shaping and egress selection (None: the agent's defaults).
    source_ip: str | None = None  # local address to connect from
    helo: str | None = None  # EHLO name that goes with source_ip
    messages_per_connection: int | None = None  # close a session after this many
    recipients_per_transaction: int | None = None


class DeliveryAgent(Protocol):
    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        """Try once; exactly one result per recipient of ``job``, in the same order."""
        ...


class TxtResolver(Protocol):
    """The lookups of sender authentication; all of them go through the cached resolver."""

    async def resolve_txt(self, name: str) -> list[str]:
        """Each TXT record of ``name`` with its strings joined; [] when it has none (NODATA).

        Raises DnsError: permanent for NXDOMAIN, temporary for SERVFAIL and time-outs.
        """
        ...

    async def resolve_addresses(self, host: str) -> list[str]:
        """A then AAAA addresses of ``host``; raises DnsError."""
        ...

    async def resolve_mx(self, domain: str) -> MxAnswer: ...

    async def resolve_ptr(self, ip: str) -> list[str]:
        """Host names of the PTR records of ``ip``; [] when it has none."""
        ...


class EventSink(Protocol):
    def record(self, event: DeliveryEvent) -> None:
        """Queue one event for a batched write; never blocks, never raises."""
        ...


class SuppressionList(Protocol):
    async def suppressed(self, sender_domain: str, recipients: Sequence[str]) -> set[str]:
        """Which of ``recipients`` (as given) are suppressed for mail from ``sender_domain``."""
        ...

    def note_failure(
        self, sender_domain: str, recipient: str, status: str, permanent: bool
    ) -> None:
        """A failure of our own delivery attempt (``status`` like "5.1.1"); the list decides
        whether the address goes on it. Never blocks: the write happens in the background."""
        ...


class ReturnPath(Protocol):
    def for_recipient(self, queue_id: str, sender: str, recipient: str) -> str | None:
        """The VERP envelope sender for one recipient, or None to keep ``sender`` as is
        (null sender, VERP off, or a sender whose domain is not ours)."""
        ...
