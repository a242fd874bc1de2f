"""What the sans-I/O SMTP machine asks of its adapter.

The machine answers most commands by itself (it queues reply bytes). It stops and returns one
of these events when it needs something only the adapter can do: ask policy about an address,
check a password, hand a complete message to the sink, switch on TLS, or close the connection.
It parses nothing further until the adapter answers (``SmtpMachine.sender_checked`` and
friends), which keeps the replies of pipelined commands in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hayate.core.envelope import Envelope


@dataclass(frozen=True, slots=True)
class CheckSender:
    """MAIL FROM passed syntax checks; answer with ``sender_checked``."""

    sender: str


@dataclass(frozen=True, slots=True)
class CheckRecipient:
    """RCPT TO passed syntax checks; answer with ``recipient_checked``."""

    sender: str
    recipient: str
    declared_size: int | None = None  # MAIL FROM's SIZE= of this transaction, if given


@dataclass(frozen=True, slots=True)
class Authenticate:
    """AUTH gathered credentials; answer with ``auth_checked``."""

    mechanism: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """DATA ended with a clean message; answer with ``message_handled``.

    ``data`` is dot-unstuffed, lines end in CRLF, the final ``.`` line is removed.
    """

    envelope: Envelope
    data: bytes


@dataclass(frozen=True, slots=True)
class StartTls:
    """The 220 reply to STARTTLS is queued; flush it, then start TLS and call ``tls_started``.

    ``discarded`` counts plaintext bytes that followed STARTTLS and were thrown away.
    """

    discarded: int


@dataclass(frozen=True, slots=True)
class Close:
    """Flush the queued replies and close the connection (after QUIT or a 421)."""

    reason: str


Event = CheckSender | CheckRecipient | Authenticate | MessageReceived | StartTls | Close
