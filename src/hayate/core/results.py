"""What delivery agents hand back to the queue, one result per recipient.

A delivery agent never changes queue state: it returns these and the scheduler records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hayate.core.reply import SmtpReply


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # temporary failure: retry later
    BOUNCED = "bounced"  # permanent failure: DSN to the sender


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The fate of one recipient in one attempt."""

    recipient: str
    outcome: Outcome
    reply: SmtpReply  # the remote's reply, or one we made up (DNS failure, connect error)
    relay: str = ""  # "mx.example.net[192.0.2.1]:25", "local", "none"
    remote_reported: bool = False  # True when ``reply`` came from the remote server itself

    @classmethod
    def from_reply(
        cls, recipient: str, reply: SmtpReply, relay: str, remote: bool = True
    ) -> DeliveryResult:
        if reply.ok:
            outcome = Outcome.DELIVERED
        elif reply.temporary:
            outcome = Outcome.DEFERRED
        else:
            outcome = Outcome.BOUNCED
        return cls(recipient, outcome, reply, relay, remote)
