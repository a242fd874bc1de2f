"""The scheduler: Hayate's active queue.

States of a recipient (rows of the spool's ``recipients`` table):

    incoming/deferred (active=0) ──claim──► active (in memory) ──attempt──► result
          ▲                                                             │
          └──── deferred: next_attempt = backoff ◄──────────────────────┤
                                   delivered / bounced: row deleted ◄───┘

* **Active window.** At most ``queue.active_window`` recipients are in memory at once; the
  rest wait on disk. Fresh mail from ingest enters the window directly when there is room
  (no re-read); otherwise the scan loop claims due rows oldest first every
  ``queue.scan_interval`` seconds. Message bodies stay in memory only within a byte budget;
  beyond it they are read from the spool at delivery time.
* **Destinations.** Jobs (one message, the recipients that share a queue key) wait in one
  FIFO per destination — "local", a domain, or a transport nexthop. Each destination has at
  most ``connections_per_destination`` runners (``local_concurrency`` for local); a runner
  takes jobs one after another, so a remote connection is reused across messages.
* **Dead destinations.** When an attempt could not reach any host, the destination is
  suspended for a short while and its other waiting jobs are deferred with the same reason
  instead of each trying again (Postfix does the same).
* **Results.** Delivery agents return one result per recipient; only this module writes the
  outcome: delivered → row deleted; deferred → backoff, or bounce once the lifetime is over;
  bounced → one DSN per message to the envelope sender (never to the null sender, never for
  a bounce), written through ingest *before* the failed rows are deleted.
* **Shunt.** If anything unexpected goes wrong with a message, it is held (kept on disk,
  taken out of delivery) for an operator, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hayate.config import DeliveryConfig, QueueConfig
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import Clock, DeliveryAgent, DeliveryJob, SystemClock
from hayate.ingest.headers import header_block_end
from hayate.ingest.routing import LOCAL
from hayate.queue.backoff import expired, next_attempt
from hayate.queue.dsn import FailedRecipient, build_dsn, should_bounce
from hayate.store.spool import RecipientRow, Spool, SpoolMessage

log = logging.getLogger("hayate.queue")

DATA_BUDGET = 64 * 1024 * 1024  # bytes of message data kept in memory by the window
DEAD_DESTINATION_SECONDS = 60.0

BounceSender = Callable[[str, bytes], Awaitable[str]]  # (recipient, DSN bytes) → queue id


def _unreachable(result: DeliveryResult) -> bool:
    """No host of the destination could be reached (connect failure or DNS trouble), as
    opposed to a conversation that went wrong: only the former suspends a destination."""
    return (
        result.outcome is Outcome.DEFERRED
        and not result.remote_reported
        and result.reply.enhanced in ("4.4.1", "4.4.3")
    )


@dataclass(slots=True)
class _Message:
    id: str
    sender: str
    arrival: float
    smtputf8: bool
    body_8bit: bool
    envid: str | None
    ret: str | None
    data: bytes | None
    pending: int = 0  # recipients of this message still in the window
    failures: list[FailedRecipient] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)
    headers: bytes | None = None


@dataclass(slots=True)
class _Rcpt:
    id: int
    address: str
    orig: str | None
    attempts: int


@dataclass(slots=True)
class _Job:
    msg: _Message
    route: str
    destination: str
    nexthop: str | None
    rcpts: list[_Rcpt]


@dataclass(slots=True)
class _Destination:
    jobs: deque[_Job] = field(default_factory=deque)
    runners: int = 0
    dead_until: float = 0.0
    dead_reply: SmtpReply | None = None


@dataclass(slots=True)
class SchedulerStats:
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    held: int = 0
    dsns: int = 0


class Scheduler:
    def __init__(
        self,
        *,
        spool: Spool,
        agents: dict[str, DeliveryAgent],
        queue_cfg: QueueConfig,
        delivery_cfg: DeliveryConfig,
        hostname: str,
        send_bounce: BounceSender | None = None,
        clock: Clock | None = None,
        local_concurrency: int = 8,
    ) -> None:
        self.spool = spool
        self.agents = agents
        self.qcfg = queue_cfg
        self.dcfg = delivery_cfg
        self.hostname = hostname
        self.send_bounce = send_bounce
        self.clock = clock or SystemClock()
        self.local_concurrency = local_concurrency
        self.window = queue_cfg.active_window
        self.active = 0  # recipients in memory
        self.data_bytes = 0
        self.destinations: dict[str, _Destination] = {}
        self.stats = SchedulerStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._scan_task: asyncio.Task[None] | None = None
        self._scan_now = asyncio.Event()
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        reset = self.spool.reset_active()
        if reset:
            log.info("recovered %d recipients that were active before the last stop", reset)
        self._scan_task = asyncio.get_running_loop().create_task(self._scan_loop())

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        if self._scan_task is not None:
            self._scan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scan_task
        for dest in self.destinations.values():
            dest.jobs.clear()  # not started: they stay due on disk
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    def wake(self) -> None:
        """Look at the spool now and forget suspended destinations (an operator's retry)."""
        for key in self.destinations:
            self._revive(key)
        self._scan_now.set()

    # --- QueueFeed (fresh mail from ingest) ----------------------------------------------

    def reserve(self, count: int) -> bool:
        if self._stopping or self.active + count > self.window:
            return False
        self.active += count
        return True

    def release(self, count: int) -> None:
        self.active -= count

    def queued(self, msg: SpoolMessage, recipient_ids: list[int]) -> None:
        keep = self.data_bytes + len(msg.data) <= DATA_BUDGET
        message = _Message(
            msg.id, msg.sender, msg.arrival, msg.smtputf8, msg.body_8bit, msg.envid, msg.ret,
            msg.data if keep else None,
        )
        if keep:
            self.data_bytes += len(msg.data)
        groups: dict[tuple[str, str, str | None], list[_Rcpt]] = {}
        for rid, r in zip(recipient_ids, msg.recipients, strict=True):
            groups.setdefault((r.route, r.destination, r.nexthop), []).append(
                _Rcpt(rid, r.address, r.orig, 0)
            )
        self._add_jobs(message, groups)

    # --- scanning the spool --------------------------------------------------------------

    async def _scan_loop(self) -> None:
        while True:
            try:
                self.scan_once()
            except Exception:
                log.exception("queue scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), self.qcfg.scan_interval)
            self._scan_now.clear()

    def scan_once(self) -> int:
        """Claim due recipients into the window; returns how many."""
        free = self.window - self.active
        if free <= 0 or self._stopping:
            return 0
        rows = self.spool.claim_due(self.clock.now(), free)
        if not rows:
            return 0
        self.active += len(rows)
        by_msg: dict[str, list[RecipientRow]] = {}
        for row in rows:
            by_msg.setdefault(row.msg_id, []).append(row)
        for msg_id, msg_rows in by_msg.items():
            info = self.spool.message(msg_id)
            if info is None:  # deleted by an operator meanwhile
                self.active -= len(msg_rows)
                continue
            message = _Message(
                info.id, info.sender, info.arrival, info.smtputf8, info.body_8bit,
                info.envid, info.ret, None,
            )
            groups: dict[tuple[str, str, str | None], list[_Rcpt]] = {}
            for row in msg_rows:
                if row.next_attempt <= 0:  # `hayate queue retry`: try even a suspended one
                    self._revive(LOCAL if row.route == LOCAL else row.destination)
                groups.setdefault((row.route, row.destination, row.nexthop), []).append(
                    _Rcpt(row.id, row.address, row.orig, row.attempts)
                )
            self._add_jobs(message, groups)
        return len(rows)

    def _revive(self, key: str) -> None:
        dest = self.destinations.get(key)
        if dest is not None:
            dest.dead_until, dest.dead_reply = 0.0, None

    # --- dispatching ---------------------------------------------------------------------

    def _add_jobs(
        self, message: _Message, groups: dict[tuple[str, str, str | None], list[_Rcpt]]
    ) -> None:
        step = max(1, self.dcfg.recipients_per_transaction)
        for (route, destination, nexthop), rcpts in groups.items():
            message.pending += len(rcpts)
            key = LOCAL if route == LOCAL else destination
            dest = self.destinations.get(key)
            if dest is None:
                dest = self.destinations[key] = _Destination()
            for i in range(0, len(rcpts), step):
                dest.jobs.append(_Job(message, route, destination, nexthop, rcpts[i : i + step]))
            self._kick(key, dest)

    def _kick(self, key: str, dest: _Destination) -> None:
        limit = self.local_concurrency if key == LOCAL else self.dcfg.connections_per_destination
        while dest.jobs and dest.runners < limit:
            dest.runners += 1
            task = asyncio.get_running_loop().create_task(self._runner(key, dest))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _runner(self, key: str, dest: _Destination) -> None:
        try:
            while dest.jobs and not self._stopping:
                job = dest.jobs.popleft()
                await self._attempt(dest, job)
        finally:
            dest.runners -= 1
            idle = not dest.jobs and dest.runners == 0
            if idle and dest.dead_until <= self.clock.now() and self.destinations.get(key) is dest:
                del self.destinations[key]

    async def _attempt(self, dest: _Destination, job: _Job) -> None:
        msg = job.msg
        now = self.clock.now()
        if dest.dead_reply is not None and dest.dead_until > now:
            reply = SmtpReply(
                dest.dead_reply.code, dest.dead_reply.enhanced,
                f"delivery temporarily suspended: {dest.dead_reply.text}",
            )
            self._record(job, [DeliveryResult(r.address, Outcome.DEFERRED, reply, "none")
                               for r in job.rcpts], now)
            return
        data = msg.data if msg.data is not None else self.spool.message_data(msg.id)
        if data is None:  # deleted by an operator while waiting
            self._job_finished(job)
            return
        agent = self.agents[LOCAL if job.route == LOCAL else "remote"]
        delivery = DeliveryJob(
            queue_id=msg.id,
            sender=msg.sender,
            recipients=tuple(r.address for r in job.rcpts),
            data=data,
            destination=job.destination,
            nexthop=job.nexthop,
            smtputf8=msg.smtputf8,
            body_8bit=msg.body_8bit,
            envid=msg.envid,
        )
        try:
            results = await agent.deliver(delivery)
            if len(results) != len(job.rcpts):
                raise RuntimeError(f"agent returned {len(results)} results for {len(job.rcpts)}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: delivery to %s failed; message held", msg.id, job.destination)
            self._shunt(job, f"delivery error: {exc!r}")
            return
        if job.route != LOCAL and all(_unreachable(r) for r in results):
            dest.dead_until = now + min(DEAD_DESTINATION_SECONDS, self.qcfg.min_backoff)
            dest.dead_reply = results[0].reply
        elif dest.dead_reply is not None:
            dest.dead_reply = None
        if msg.data is None and msg.headers is None:  # kept for a DSN (bounce or expiry)
            msg.headers = data[: header_block_end(data)]
        self._record(job, results, self.clock.now())

    # --- recording results ---------------------------------------------------------------

    def _record(self, job: _Job, results: list[DeliveryResult], now: float) -> None:
        msg = job.msg
        done: list[int] = []
        for rcpt, result in zip(job.rcpts, results, strict=True):
            outcome = result.outcome
            attempts = rcpt.attempts + 1
            status = "sent"
            if outcome is Outcome.DEFERRED and expired(self.qcfg, msg.arrival, now):
                outcome = Outcome.BOUNCED
                status = "expired"
            if outcome is Outcome.DELIVERED:
                self.stats.delivered += 1
                done.append(rcpt.id)
            elif outcome is Outcome.DEFERRED:
                status = "deferred"
                self.stats.deferred += 1
                when = next_attempt(self.qcfg, msg.arrival, attempts, now)
                self.spool.defer([rcpt.id], when, str(result.reply))
            else:
                if status != "expired":
                    status = "bounced"
                self.stats.bounced += 1
                msg.failed_ids.append(rcpt.id)
                msg.failures.append(self._failure(rcpt, result, now, status == "expired"))
            log.info(
                "%s: to=<%s>,%s relay=%s, delay=%.2f, attempts=%d, status=%s (%s)",
                msg.id, rcpt.address, f" orig_to=<{rcpt.orig}>," if rcpt.orig else "",
                result.relay or "none", now - msg.arrival, attempts, status, result.reply,
            )
        if done:
            self.spool.finish(done, msg.id)
        self._job_finished(job)

    @staticmethod
    def _failure(
        rcpt: _Rcpt, result: DeliveryResult, now: float, was_expired: bool
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

    def _job_finished(self, job: _Job) -> None:
        msg = job.msg
        count = len(job.rcpts)
        self.active -= count
        msg.pending -= count
        if msg.pending > 0:
            return
        if msg.data is not None:
            self.data_bytes -= len(msg.data)
        if msg.failures:
            if msg.headers is None and msg.data is not None:
                msg.headers = msg.data[: header_block_end(msg.data)]
            task = asyncio.get_running_loop().create_task(self._bounce(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        msg.data = None

    def _shunt(self, job: _Job, reason: str) -> None:
        self.stats.held += 1
        self.spool.hold_message(job.msg.id, reason)
        self._job_finished(job)

    async def _bounce(self, msg: _Message) -> None:
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
