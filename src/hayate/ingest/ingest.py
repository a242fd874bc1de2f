"""The ingest pipeline: check, add headers, expand aliases, route, write the spool durably.

``Ingest.accept`` implements :class:`hayate.core.seams.MessageSink` for the SMTP server;
``Ingest.inject`` is the same path for mail made here (``hayate send``, DSNs). The reply
(250 with the queue id) is returned only after the spool commit that holds the message.
After that the message is handed to the scheduler through a :class:`QueueFeed`, so fresh
mail is delivered from memory without being read back from disk.

Order for each message: Received (and missing Message-ID/Date) → hop count → the message
stream (the ``[streams] header`` field, removed from the message, else the sending domain's
stream, else the default) → the ``filters`` in order (inbound SPF/DKIM/DMARC checks that
add Authentication-Results, then DKIM signing, which must come last because it signs the
final headers) → alias expansion and routing → spool commit → 250.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from hayate.config import StreamsConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo, domain_of, nearest_listed
from hayate.core.reply import SmtpError, SmtpReply
from hayate.core.seams import Clock, SystemClock
from hayate.ingest.headers import add_missing_headers, received_header, take_header
from hayate.ingest.routing import Router
from hayate.store.spool import Spool, SpoolMessage, SpoolRecipient

log = logging.getLogger("hayate.ingest")

MAX_HOPS = 50  # like Postfix's hopcount_limit: more Received headers means a mail loop

AliasExpander = Callable[[str], Awaitable[list[str]]]

_STREAM_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


def stream_of(streams: StreamsConfig, sender: str, chosen: str | None) -> str:
    """The stream of a message: the one the client named (if it is a sane name), else the
    sending domain's (or its nearest parent's) from ``[streams] domains``, else the default."""
    if chosen:
        name = chosen.strip().lower()
        if _STREAM_NAME.fullmatch(name):
            return name
    if sender:
        found = nearest_listed(domain_of(sender), streams.domains)
        if found is not None:
            return found
    return streams.default


class IngestFilter(Protocol):
    """One step that may inspect or change a message before it is queued."""

    async def __call__(self, session: SessionInfo, envelope: Envelope, data: bytes) -> bytes:
        """Return the message to go on with (for example with a header prepended), or raise
        SmtpError to refuse it (the SMTP client sees that reply at the end of DATA)."""
        ...


class QueueFeed(Protocol):
    """The scheduler's door for fresh mail (a seam so ingest never imports the queue)."""

    def reserve(self, count: int) -> bool:
        """Room for ``count`` recipients in the in-memory active window?"""
        ...

    def release(self, count: int) -> None: ...

    def queued(self, msg: SpoolMessage, recipient_ids: list[int]) -> None:
        """A message is durable and its recipients are active: deliver it."""
        ...


class Ingest:
    def __init__(
        self,
        *,
        hostname: str,
        spool: Spool,
        router: Router,
        expand_alias: AliasExpander,
        feed: QueueFeed | None = None,
        clock: Clock | None = None,
        filters: list[IngestFilter] | None = None,
        streams: StreamsConfig | None = None,
    ) -> None:
        self.hostname = hostname
        self.spool = spool
        self.router = router
        self.expand_alias = expand_alias
        self.feed = feed
        self.clock = clock or SystemClock()
        self.filters: list[IngestFilter] = list(filters or [])
        self.streams = streams or StreamsConfig()
        self.accepted = 0

    async def accept(self, session: SessionInfo, envelope: Envelope, data: bytes) -> SmtpReply:
        queue_id = await self._ingest(session, envelope, data)
        return SmtpReply(250, "2.0.0", f"Ok: queued as {queue_id}")

    async def inject(
        self, sender: str, recipients: list[str], data: bytes, origin: str = "local"
    ) -> str:
        """Queue a message made on this host; returns its queue id."""
        session = SessionInfo(Listener.LOCAL, peer_ip="127.0.0.1", helo=origin)
        smtputf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        body_8bit = not data.isascii()
        return await self._ingest(
            session, Envelope(sender, tuple(recipients), smtputf8, body_8bit), data
        )

    async def _route_all(self, recipients: tuple[str, ...]) -> tuple[SpoolRecipient, ...]:
        routed: list[SpoolRecipient] = []
        seen: set[str] = set()
        for rcpt in recipients:
            if self.router.is_local_domain(domain_of(rcpt)):
                targets = await self.expand_alias(rcpt)
            else:
                targets = [rcpt]
            for target in targets:
                key = target.lower()
                if key in seen:
                    continue
                seen.add(key)
                routed.append(self.router.route(target, rcpt if target != rcpt else None))
        return tuple(routed)

    async def _ingest(self, session: SessionInfo, envelope: Envelope, data: bytes) -> str:
        now = self.clock.now()
        queue_id = self.spool.new_id()
        received = received_header(session, self.hostname, queue_id, envelope.recipients, now)
        data, hops = add_missing_headers(data, received, queue_id, self.hostname, now)
        if hops > MAX_HOPS:
            raise SmtpError(554, "5.4.6", "Too many hops (mail forwarding loop)")
        data, chosen = take_header(data, self.streams.header)
        stream = stream_of(self.streams, envelope.sender, chosen)
        for step in self.filters:
            data = await step(session, envelope, data)
        recipients = await self._route_all(envelope.recipients)
        if not recipients:
            raise SmtpError(554, "5.1.1", "No valid recipients")
        origin = f"{session.listener.value} {session.peer_ip}"
        if session.auth_user:
            origin += f" {session.auth_user}"
        msg = SpoolMessage(
            id=queue_id,
            sender=envelope.sender,
            arrival=now,
            data=data,
            recipients=recipients,
            smtputf8=envelope.smtputf8,
            body_8bit=envelope.body_8bit,
            envid=envelope.envid,
            ret=envelope.ret,
            origin=origin,
            stream=stream,
        )
        feed = self.feed
        active = feed is not None and feed.reserve(len(recipients))
        try:
            ids = await self.spool.store(msg, active)
        except Exception as exc:
            if active and feed is not None:
                feed.release(len(recipients))
            log.error("%s: spool write failed: %s", queue_id, exc)
            raise SmtpError(451, "4.3.0", "Local error in processing, try again later") from exc
        self.accepted += 1
        log.info(
            "%s: from=<%s>, size=%d, nrcpt=%d (%s)",
            queue_id, envelope.sender, len(data), len(recipients), origin,
        )
        if active and feed is not None:
            feed.queued(msg, ids)
        return queue_id
