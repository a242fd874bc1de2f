"""The bounce processor: the delivery agent of route "bounce" (mail to the bounce domain).

For each message that arrives at ``b-<token>@<bounce domain>`` (or any other address there):

1. **Which message and recipient?** The envelope recipients are decoded as VERP addresses
   (``hayate.bounces.verp``); when none is one of ours, the Return-Path of the returned
   original (``BounceRecord.original_sender``) is tried, which is how feedback-loop reports
   sent to a fixed address are matched. A token whose recipient is a digest (very long
   addresses) is resolved with the recipients the report names, then with the events
   recorded for its queue id.
2. **What happened?** ``parse(data)`` (``hayate.bounces.parse.parse_message``) gives one
   record per recipient: hard, soft, complaint, auto-reply, delivered or unknown.
3. **Which sending domain?** The token does not carry the sender: it is looked up by queue
   id in the events table (the scheduler records the original, pre-VERP sender with every
   attempt). When no event names it (events off, or older than their retention), the entry
   goes on the list for ``*`` (every sending domain), with a log line saying so.
4. **Effects.** With a VERP token, one event for the token's recipient (VERP wins over the
   address the report names: the remote may have forwarded the mail): ``async-bounce``
   (``bounce_kind`` hard/soft, ``reason``) or ``complained``, and the suppression rules for
   the sending domain. A report that cannot be parsed but reached a genuine token counts as
   a soft bounce with reason ``unknown`` (so an address that keeps bouncing unreadably is
   suppressed after ``soft_bounce_limit`` of them). Without a token, the events are recorded
   for each recipient the report names but **nothing is suppressed**: anybody can send us a
   report, only our signed token proves it is about mail we sent.
   Auto-replies, "delivered" notices and delay warnings (kind ``soft``, reason
   ``delayed``: the remote MTA still holds the message and keeps trying) only make a log
   line: a delay is not a bounce, so it never counts toward suppression, with or without a
   token. The final outcome comes later as a bounce or not at all.

Every message is consumed: the result is DELIVERED for each recipient of the job, even for
malformed mail (logged), so a bad report never sits in the queue or gets held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from hayate.bounces.delay import DELAYED
from hayate.bounces.records import BounceRecord
from hayate.bounces.suppression import SuppressionService
from hayate.bounces.verp import VerpAddress, VerpCodec
from hayate.core.envelope import domain_of
from hayate.core.events import DeliveryEvent, EventKind
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import Clock, DeliveryJob, EventSink
from hayate.store.base import ANY_DOMAIN

log = logging.getLogger("hayate.bounces")

Parse = Callable[[bytes], list[BounceRecord]]
DONE = SmtpReply(250, "2.0.0", "report processed")
RELAY = "bounce"
_PRIORITY = {"complaint": 0, "hard": 1, "soft": 2, "unknown": 3}


class BounceProcessor:
    """Consumes bounce and feedback reports (implements ``DeliveryAgent``)."""

    def __init__(
        self,
        parse: Parse,
        verp: VerpCodec | None,
        suppression: SuppressionService,
        events: EventSink,
        clock: Clock,
    ) -> None:
        self.parse = parse
        self.verp = verp
        self.suppression = suppression
        self.events = events
        self.clock = clock
        self.store = suppression.store

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        try:
            await self.process(job.queue_id, job.recipients, job.data)
        except Exception:
            log.exception("%s: bounce processing failed; report consumed", job.queue_id)
        return [DeliveryResult(r, Outcome.DELIVERED, DONE, RELAY) for r in job.recipients]

    async def process(self, queue_id: str, recipients: Sequence[str], data: bytes) -> None:
        """Handle one inbound report addressed to ``recipients`` (see the module docstring)."""
        try:
            records = self.parse(data)
        except Exception:
            log.exception("%s: report could not be parsed", queue_id)
            records = []
        token = self._token(recipients, records)
        if token is None:
            await self._without_token(queue_id, records)
            return
        record = _pick(records)
        recipient = await self._recipient(token, records)
        if recipient is None:
            log.warning(
                "%s: report for message %s names no recipient we can match; ignored",
                queue_id, token.queue_id,
            )
            return
        if record.kind in ("auto-reply", "delivered") or _is_delay(record):
            what = "delay warning" if _is_delay(record) else record.kind
            log.info("%s: %s for <%s> (message %s%s): no action", queue_id, what, recipient,
                     token.queue_id, f", {record.status}" if record.status else "")
            return
        record = replace(record, recipient=recipient)
        if record.kind == "unknown":
            record = replace(record, kind="soft", reason="unknown")
        sender = await self._sender(token.queue_id)
        domain = domain_of(sender or "") or ANY_DOMAIN
        if not sender:
            log.warning("%s: no event names the sender of message %s; using '*'",
                        queue_id, token.queue_id)
        self.events.record(self._event(record, token.queue_id, sender or ""))
        decision = await self.suppression.apply(domain, record)
        log.info(
            "%s: %s for <%s> (message %s, %s %s)%s", queue_id, record.kind, recipient,
            token.queue_id, record.reason, record.status,
            f"; suppressed for {domain}" if decision.suppressed else "",
        )

    # -- steps --------------------------------------------------------------------------

    def _token(
        self, recipients: Sequence[str], records: list[BounceRecord]
    ) -> VerpAddress | None:
        if self.verp is None:
            return None
        for address in [*recipients, *(r.original_sender for r in records)]:
            if address:
                token = self.verp.decode(address)
                if token is not None:
                    return token
        return None

    async def _recipient(self, token: VerpAddress, records: list[BounceRecord]) -> str | None:
        if token.recipient is not None:
            return token.recipient
        for record in records:
            if record.recipient and token.matches(record.recipient):
                return record.recipient.lower()
        events = await self.store.query_events(queue_id=token.queue_id, limit=10_000)
        for event in events:
            if token.matches(event.recipient):
                return event.recipient
        return None

    async def _sender(self, queue_id: str) -> str | None:
        try:
            return await self.store.event_sender(queue_id)
        except Exception as exc:
            log.warning("cannot look up the sender of %s: %s", queue_id, exc)
            return None

    async def _without_token(self, queue_id: str, records: list[BounceRecord]) -> None:
        """A report that does not name one of our VERP tokens: events only, no suppression."""
        for record in records:
            delay = _is_delay(record)
            if record.kind in ("hard", "soft", "complaint") and record.recipient and not delay:
                self.events.record(self._event(record, "", ""))
                log.info("%s: %s for <%s> (%s %s) without a VERP token: event only",
                         queue_id, record.kind, record.recipient, record.reason, record.status)
            else:
                what = "delay warning" if delay else f"{record.kind} report"
                log.info("%s: %s%s without a VERP token: no action", queue_id, what,
                         f" for <{record.recipient}>" if record.recipient else "")
        if not records:
            log.info("%s: empty or unreadable report without a VERP token: no action", queue_id)

    def _event(self, record: BounceRecord, queue_id: str, sender: str) -> DeliveryEvent:
        complaint = record.kind == "complaint"
        return DeliveryEvent(
            time=self.clock.now(),
            kind=EventKind.COMPLAINED if complaint else EventKind.ASYNC_BOUNCE,
            recipient=record.recipient,
            sender=sender,
            queue_id=queue_id,
            status=record.status,
            reply=record.remote_reply,
            relay=RELAY,
            bounce_kind="" if complaint else record.kind,
            reason=record.reason,
        )


def _is_delay(record: BounceRecord) -> bool:
    """A delay warning: the message is late, not lost (``hayate.bounces.delay``)."""
    return record.reason == DELAYED


def _pick(records: list[BounceRecord]) -> BounceRecord:
    """The record that speaks for a VERP recipient: complaint, hard, soft, then the rest."""
    if not records:
        return BounceRecord("", "unknown", "unknown")
    return min(records, key=lambda r: _PRIORITY.get(r.kind, 9))
