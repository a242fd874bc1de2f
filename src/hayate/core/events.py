"""Delivery events: what happened to one recipient of one message, as a value.

Every attempt and outcome becomes one :class:`DeliveryEvent` — delivered, deferred, bounced,
expired, suppressed, and, from inbound processing, bounce reports and complaints that arrive
later. The queue and the bounce processor produce them; an :class:`EventSink` (see
``core.seams``) stores them in batches; ``hayate events`` and, later, webhooks and analytics
read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    DELIVERED = "delivered"  # the remote (or the local mailbox) accepted it
    DEFERRED = "deferred"  # a temporary failure; it will be tried again
    BOUNCED = "bounced"  # a permanent failure during our own delivery attempt
    EXPIRED = "expired"  # deferred for longer than the queue lifetime
    SUPPRESSED = "suppressed"  # not sent: the recipient is on the suppression list
    ASYNC_BOUNCE = "async-bounce"  # a bounce report that arrived later (hard or soft)
    COMPLAINED = "complained"  # a feedback-loop (ARF) abuse report


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    time: float  # seconds since the epoch
    kind: EventKind
    recipient: str
    sender: str = ""  # the original envelope sender (before VERP)
    queue_id: str = ""
    status: str = ""  # enhanced status code, e.g. "5.1.1"
    reply: str = ""  # the remote reply or our own diagnostic
    relay: str = ""  # "host[ip]:port" or "local"
    source: str = ""  # egress source name
    site: str = ""  # shaping site (MX rollup) or provider
    stream: str = ""  # "transactional", "bulk", ...
    attempts: int = 0
    bounce_kind: str = ""  # for ASYNC_BOUNCE: "hard" | "soft"; reason category in ``reason``
    reason: str = ""  # bounce reason category ("user-unknown", "mailbox-full", ...)
