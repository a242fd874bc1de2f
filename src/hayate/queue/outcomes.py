"""Delivery outcomes: the only code that turns delivery results into queue state.

For each recipient of a job the :class:`Recorder` writes exactly one outcome:

* delivered → row deleted;
* deferred → ``next_attempt`` by backoff (an attempt counted), or expired → bounced;
* bounced → one DSN per message to the envelope sender, written through ingest *before*
  the failed rows are deleted (never to the null sender, never for a report);
* suppressed (on the sender domain's suppression list, never sent) → finished as bounced
  with 5.7.1; a DSN only when ``suppression.notify_sender``, otherwise just removed;
* postponed (a suspended path, a warm-up cap: nothing was tried) → back on disk until a
  given time, no attempt counted; expired mail bounces instead.

Each of these also becomes one :class:`~hayate.core.events.DeliveryEvent` per recipient
(through the non-blocking ``EventSink``) and one log line in Postfix's style. A permanent
failure of our own attempt is reported to the suppression list (``note_failure``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hayate.config import QueueConfig
from hayate.core.events import DeliveryEvent, EventKind
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import Clock, EventSink, SuppressionList
from hayate.ingest.headers import header_block_end
from hayate.ingest.routing import BOUNCE, LOCAL, REMOTE
from hayate.queue.backoff import expired, next_attempt
from hayate.queue.dsn import FailedRecipient, build_dsn, should_bounce
from hayate.queue.jobs import Job, PathInfo, Rcpt, WindowMessage
from hayate.store.spool import Spool

log = logging.getLogger("hayate.queue")

BounceSender = Callable[[str, bytes], Awaitable[str]]  # (recipient, DSN bytes) → queue id

SUPPRESSED_REPLY = SmtpReply(550, "5.7.1", "recipient is on the suppression list")
NO_PATH = PathInfo()


@dataclass(slots=True)
class SchedulerStats:
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    held: int = 0
    dsns: int = 0
    suppressed: int = 0
    postponed: int = 0  # recipients sent back to disk without an attempt


class Recorder:
    """Writes outcomes. ``on_done(recipients, data_bytes)`` gives recipients (and, when a
    message is complete, its bytes) back to the scheduler's window."""

    def __init__(
        self,
        *,
        spool: Spool,
        queue_cfg: QueueConfig,
        hostname: str,
        clock: Clock,
        stats: SchedulerStats,
        on_done: Callable[[int, int], None],
        tasks: set[asyncio.Task[None]],
        send_bounce: BounceSender | None = None,
        events: EventSink | None = None,
        suppression: SuppressionList | None = None,
        notify_suppressed: bool = True,
    ) -> None:
        self.spool = spool
        self.qcfg = queue_cfg
        self.hostname = hostname
        self.clock = clock
        self.stats = stats
        self.on_done = on_done
        self.tasks = tasks
        self.send_bounce = send_bounce
        self.events = events
        self.suppression = suppression
        self.notify_suppressed = notify_suppressed

    # --- outcomes ------------------------------------------------------------------------

    def record(
        self, job: Job, results: list[DeliveryResult], now: float, path: PathInfo = NO_PATH
    ) -> None:
        msg = job.msg
        done: list[int] = []
        for rcpt, result in zip(job.rcpts, results, strict=True):
            outcome = result.outcome
            attempts = rcpt.attempts + 1
            status = "sent"
            kind = EventKind.DELIVERED
            if outcome is Outcome.DEFERRED and expired(self.qcfg, msg.arrival, now):
                outcome = Outcome.BOUNCED
                status = "expired"
            if outcome is Outcome.DELIVERED:
                self.stats.delivered += 1
                done.append(rcpt.id)
            elif outcome is Outcome.DEFERRED:
                status, kind = "deferred", EventKind.DEFERRED
                self.stats.deferred += 1
                when = next_attempt(self.qcfg, msg.arrival, attempts, now)
                self.spool.defer([rcpt.id], when, str(result.reply))
            else:
                failure = self._failure(rcpt, result, now, status == "expired")
                if status == "expired":
                    kind = EventKind.EXPIRED
                else:
                    status, kind = "bounced", EventKind.BOUNCED
                    if self.suppression is not None and job.route == REMOTE and msg.sender:
                        self.suppression.note_failure(
                            msg.sender_domain, rcpt.address, failure.status, permanent=True
                        )
                self.stats.bounced += 1
                msg.failed_ids.append(rcpt.id)
                msg.failures.append(failure)
            self._event(kind, job, rcpt, result.reply, result.relay, attempts, now, path)
            log.info(
                "%s: to=<%s>,%s relay=%s, delay=%.2f, attempts=%d, status=%s (%s)",
                msg.id, rcpt.address, f" orig_to=<{rcpt.orig}>," if rcpt.orig else "",
                result.relay or "none", now - msg.arrival, attempts, status, result.reply,
            )
        if done:
            self.spool.finish(done, msg.id)
        self.finished(job)

    def suppress(self, job: Job, now: float, path: PathInfo = NO_PATH) -> None:
        """The recipients of ``job`` are suppressed: not sent, finished as bounced."""
        msg = job.msg
        reply = SUPPRESSED_REPLY
        silent: list[int] = []
        for rcpt in job.rcpts:
            self.stats.suppressed += 1
            self._event(EventKind.SUPPRESSED, job, rcpt, reply, "none", rcpt.attempts, now, path)
            log.info(
                "%s: to=<%s>, relay=none, delay=%.2f, status=suppressed (%s)",
                msg.id, rcpt.address, now - msg.arrival, reply,
            )
            if self.notify_suppressed:
                msg.failed_ids.append(rcpt.id)
                msg.failures.append(FailedRecipient(
                    address=rcpt.address, status=reply.enhanced, diagnostic=str(reply),
                    remote_mta=None, last_attempt=now, original_recipient=rcpt.orig,
                ))
            else:
                silent.append(rcpt.id)
        if silent:
            self.spool.finish(silent, msg.id)
        self.finished(job)

    def postpone(
        self, job: Job, until: float, reply: SmtpReply, now: float, path: PathInfo = NO_PATH
    ) -> None:
        """Nothing was tried (suspended path, warm-up cap): wait on disk until ``until``."""
        msg = job.msg
        if expired(self.qcfg, msg.arrival, now):
            relay = "none"
            self.record(job, [DeliveryResult(r.address, Outcome.DEFERRED, reply, relay)
                              for r in job.rcpts], now, path)
            return
        self.stats.postponed += len(job.rcpts)
        self.spool.postpone([r.id for r in job.rcpts], until, str(reply))
        for rcpt in job.rcpts:
            self._event(EventKind.DEFERRED, job, rcpt, reply, "none", rcpt.attempts, now, path)
        log.info(
            "%s: %d recipient(s) to %s wait %.0fs without an attempt (%s)",
            msg.id, len(job.rcpts), job.destination, max(0.0, until - now), reply,
        )
        self.finished(job)

    def shunt(self, job: Job, reason: str) -> None:
        self.stats.held += 1
        self.spool.hold_message(job.msg.id, reason)
        self.finished(job)

    def _event(
        self, kind: EventKind, job: Job, rcpt: Rcpt, reply: SmtpReply, relay: str,
        attempts: int, now: float, path: PathInfo,
    ) -> None:
        if self.events is None or job.route == BOUNCE:
            return  # a report consumed by the bounce processor, which records its own events
        status = reply.enhanced or (f"{reply.code // 100}.0.0" if reply.code else "")
        if kind is EventKind.EXPIRED and not status.startswith("4."):
            status = "4.4.7"
        self.events.record(DeliveryEvent(
            time=now, kind=kind, recipient=rcpt.address, sender=job.msg.sender,
            queue_id=job.msg.id, status=status, reply=str(reply), relay=relay or "",
            source=path.source, site=path.site or ("local" if job.route == LOCAL else ""),
            stream=job.msg.stream, attempts=attempts,
        ))

    @staticmethod
    def _failure(rcpt: Rcpt, result: DeliveryResult, now: float, was_expired: bool
                 ) -> FailedRecipient:
        reply = result.reply
        status = reply.enhanced or ("5.0.0" if reply.permanent else "4.0.0")
        diagnostic = str(reply)
        if was_expired:
            status = reply.enhanced if reply.enhanced.startswith("4.") else "4.4.7"
            diagnostic = f"message expired in the queue; last error: {reply}"
        remote = None
        if result.remote_reported and result.relay:
            remote = result.relay.split("[", 1)[0]
        return FailedRecipient(
            address=rcpt.address,
            status=status,
            diagnostic=diagnostic,
            remote_mta=remote,
            last_attempt=now,
            original_recipient=rcpt.orig,
        )

    # --- the end of a job and of a message -----------------------------------------------

    def finished(self, job: Job) -> None:
        msg = job.msg
        count = len(job.rcpts)
        msg.pending -= count
        if msg.pending > 0:
            self.on_done(count, 0)
            return
        released = len(msg.data) if msg.data is not None else 0
        if msg.failures:
            if msg.headers is None and msg.data is not None:
                msg.headers = msg.data[: header_block_end(msg.data)]
            task = asyncio.get_running_loop().create_task(self._bounce(msg))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        msg.data = None
        self.on_done(count, released)

    async def _bounce(self, msg: WindowMessage) -> None:
        headers = msg.headers or b""
        try:
            if self.send_bounce is not None and should_bounce(msg.sender, headers):
                dsn = build_dsn(
                    reporting_mta=self.hostname,
                    original_sender=msg.sender,
                    original_queue_id=msg.id,
                    arrival_time=msg.arrival,
                    failures=msg.failures,
                    original_message=headers,
                    envid=msg.envid,
                    now=self.clock.now(),
                )
                dsn_id = await self.send_bounce(msg.sender, dsn)
                self.stats.dsns += 1
                log.info("%s: sender non-delivery notification: %s", msg.id, dsn_id)
            else:
                log.info("%s: no DSN for sender <%s> (null sender or a report)", msg.id, msg.sender)
        except Exception as exc:
            log.exception("%s: could not queue the DSN; message held", msg.id)
            self.stats.held += 1
            self.spool.hold_message(msg.id, f"DSN failed: {exc!r}")
            return
        self.spool.finish(msg.failed_ids, msg.id)
