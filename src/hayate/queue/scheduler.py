"""The scheduler: Hayate's active queue.

States of a recipient (rows of the spool's ``recipients`` table):

    incoming/deferred (active=0) ──claim──► active (in memory) ──attempt──► result
          ▲      ▲                                   │                      │
          │      └── postponed (no attempt counted) ◄┘ suspended path,       │
          │                                            warm-up cap           │
          └──── deferred: next_attempt = backoff ◄──────────────────────────┤
                      delivered / bounced / suppressed: row deleted ◄────────┘

Where a job (one message, recipients sharing route, destination and envelope sender) waits:

    destination FIFO ──(site: MX rollup; source: egress)──► ready queue (source, site) ──► agent
    (domain, nexthop, or an in-process route)                runners = connections

* **Active window.** At most ``queue.active_window`` recipients are in memory at once; the
  rest wait on disk. Fresh mail from ingest enters the window directly when there is room
  (no re-read); otherwise the scan loop claims due rows oldest first every
  ``queue.scan_interval`` seconds. Message bodies stay in memory only within a byte budget;
  beyond it they are read from the spool at delivery time.
* **Streams.** Every FIFO keeps one lane per message stream (:mod:`hayate.queue.streams`);
  a runner always takes the transactional lane first, so transactional mail never waits
  behind a bulk backlog, and takes the rate budget first too.
* **VERP.** When the :class:`ReturnPath` gives a recipient its own envelope sender, that
  recipient becomes a job of its own; the others are grouped as usual.
* **Destinations.** A route with an agent of its own ("local", "bounce") is delivered in
  process by up to ``local_concurrency`` runners of its one FIFO (no site, no shaping). Every
  other route is remote delivery: its jobs are moved from their destination's FIFO to a
  ready queue: the site comes from the destination's MX hosts through shaping (cached per
  destination for ``SITE_TTL``; a transport nexthop is its own site; a DNS failure goes on to
  delivery with the domain as its site, so the agent reports the failure as before), the
  source from egress selection (by sending domain, stream and the site's provider).
* **Ready queues** (:mod:`hayate.queue.ready`). Per (source, site): at most the shaping
  ``connections`` runners; a runner is one connection and carries at most
  ``messages_per_connection`` jobs, then ends (a new one counts against
  ``connections_per_minute``); each job takes a token of messages per minute and per hour.
  Jobs larger than ``recipients_per_transaction`` are split when they enter the queue.
* **Node-wide limits.** With several workers (``hayate serve``), the rate buckets come from
  a shared limiter factory and each runner also needs a claim on the path's connections
  counted over every worker (:mod:`hayate.queue.claims`): when the other workers hold them
  all, the path tries again every ``NODE_RETRY`` seconds (and whenever one of its own
  runners ends). A claim outlives its runner for as long as the agent may keep the
  connection idle (``[delivery] idle_timeout``, see ``claim_linger``).
* **Automation.** Every reply of an attempt (remote replies and connection failures) goes
  to the path's governor. A suspended path opens no connection: its waiting jobs, and jobs
  that arrive while it is suspended, are *postponed* — sent back to disk until the end of
  the suspension, with the governor's reason as last reply and no attempt counted (this
  frees the window for other sites). A slowed path runs with the governor's limits.
* **Warm-up.** When egress says no source may send now (a daily cap), the job is postponed
  until the time it names. A job's recipients are counted (``Egress.sent``) when it is
  handed to the agent; if the source's allowance ran out while the job waited in its ready
  queue, the job is routed again (another source of the pool, or postponed).
* **Suppression.** Before a remote job is sent, its suppressed recipients are taken out and
  finished as bounced with 5.7.1 (see :mod:`hayate.queue.outcomes`).
* **Dead destinations.** When an attempt could not reach any host, the destination is
  suspended for a short while and its other waiting jobs are deferred with the same reason
  instead of each trying again (Postfix does the same).
* **Results.** Delivery agents return one result per recipient; only the recorder writes
  the outcome, an event per recipient and the DSN (:mod:`hayate.queue.outcomes`).
* **Shunt.** If anything unexpected goes wrong with a message, it is held (kept on disk,
  taken out of delivery) for an operator, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hayate.config import DeliveryConfig, QueueConfig, StreamsConfig
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import (
    Clock,
    DeliveryAgent,
    DeliveryJob,
    DnsError,
    EventSink,
    MxResolver,
    ReturnPath,
    SuppressionList,
    SystemClock,
)
from hayate.delivery.egress import DEFAULT_SOURCE, Egress, EgressChoice
from hayate.ingest.headers import header_block_end
from hayate.ingest.routing import REMOTE
from hayate.queue.claims import PathClaims
from hayate.queue.contracts import ConnectionSlots, LimiterFactory
from hayate.queue.jobs import Job, PathInfo, Rcpt, WindowMessage
from hayate.queue.outcomes import BounceSender, Recorder, SchedulerStats
from hayate.queue.ready import PathLimits, ReadyQueue, limit_key
from hayate.queue.shaping import Limits, Shaping, Site
from hayate.queue.streams import StreamOrder, StreamQueues
from hayate.queue.throttle import local_limiter
from hayate.store.spool import RecipientRow, Spool, SpoolMessage

__all__ = ["BounceSender", "Scheduler", "SchedulerStats"]

log = logging.getLogger("hayate.queue")

DATA_BUDGET = 64 * 1024 * 1024  # bytes of message data kept in memory by the window
DEAD_DESTINATION_SECONDS = 60.0
SITE_TTL = 300.0  # seconds a destination's site (from its MX hosts) is reused
SITE_FAILURE_TTL = 30.0  # ... after a DNS failure
NO_EGRESS = EgressChoice(DEFAULT_SOURCE, None, None)  # without egress: the system's address
NODE_RETRY = 0.1  # seconds between tries for a connection the other workers hold
CLAIM_RECHECK = 0.05  # seconds: the shortest wait before parked claims are looked at again


def claim_linger(idle_timeout: float) -> float:
    """How long a runner's connection claim outlives it: the pool's sweeper closes an idle
    session within 1.25 × idle_timeout, and a QUIT on its way needs a moment more."""
    return idle_timeout * 1.25 + 0.5

GroupKey = tuple[str, str, str | None, str]  # route, destination, nexthop, envelope sender


def _unreachable(result: DeliveryResult) -> bool:
    """No host of the destination could be reached (connect failure or DNS trouble), as
    opposed to a conversation that went wrong: only the former suspends a destination."""
    return (
        result.outcome is Outcome.DEFERRED
        and not result.remote_reported
        and result.reply.enhanced in ("4.4.1", "4.4.3")
    )


def _to_governor(result: DeliveryResult) -> bool:
    """Replies the path's governor sees: the remote's own, and failures to connect."""
    return result.remote_reported or result.reply.enhanced in ("4.4.1", "4.4.2")


@dataclass(slots=True)
class _Destination:
    jobs: StreamQueues[Job]
    agent: DeliveryAgent | None  # an in-process agent (local, bounce); None: remote delivery
    runners: int = 0
    resolving: bool = False


@dataclass(slots=True)
class _SiteEntry:
    """A destination's site, the limits shaping gives it, and until when to trust it."""

    site: Site
    limits: PathLimits
    raw_limits: Limits | None  # shaping's own limits (None without shaping: no governor)
    expires: float


@dataclass(slots=True)
class _Dead:
    until: float
    reply: SmtpReply


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
        streams_cfg: StreamsConfig | None = None,
        resolver: MxResolver | None = None,
        shaping: Shaping | None = None,
        egress: Egress | None = None,
        suppression: SuppressionList | None = None,
        notify_suppressed: bool = True,
        return_path: ReturnPath | None = None,
        events: EventSink | None = None,
        limiter_factory: LimiterFactory | None = None,
        connection_slots: ConnectionSlots | None = None,
    ) -> None:
        self.spool = spool
        self.agents = agents
        self.qcfg = queue_cfg
        self.dcfg = delivery_cfg
        self.hostname = hostname
        self.clock = clock or SystemClock()
        self.local_concurrency = local_concurrency
        streams = streams_cfg or StreamsConfig()
        self.order = StreamOrder(streams.priority, streams.default)
        self.resolver = resolver
        self.shaping = shaping
        self.egress = egress
        self.suppression = suppression
        self.return_path = return_path
        self.limiter_factory: LimiterFactory = limiter_factory or local_limiter
        self.connection_slots = connection_slots  # None: this process's runners are the limit
        self.claim_linger = claim_linger(delivery_cfg.idle_timeout)
        self.window = queue_cfg.active_window
        self.active = 0  # recipients in memory
        self.data_bytes = 0
        self.destinations: dict[str, _Destination] = {}
        self.paths: dict[tuple[str, str], ReadyQueue[Job]] = {}
        self._sites: dict[str, _SiteEntry] = {}  # destination → its site
        self._dead: dict[str, _Dead] = {}
        self.stats = SchedulerStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self.recorder = Recorder(
            spool=spool, queue_cfg=queue_cfg, hostname=hostname, clock=self.clock,
            stats=self.stats, on_done=self._done, tasks=self._tasks, send_bounce=send_bounce,
            events=events, suppression=suppression, notify_suppressed=notify_suppressed,
        )
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
            dest.jobs.drain()  # not started: they stay due on disk
        for path in self.paths.values():
            path.jobs.drain()
            if path.timer is not None:
                path.timer.cancel()
                path.timer = None
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for path in self.paths.values():
            if path.claims_timer is not None:
                path.claims_timer.cancel()
                path.claims_timer = None
            if path.claims is not None:
                path.claims.release_all()

    def wake(self) -> None:
        """Look at the spool now and forget dead destinations (an operator's retry)."""
        self._dead.clear()
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
        message = WindowMessage(
            msg.id, msg.sender, msg.arrival, msg.smtputf8, msg.body_8bit, msg.envid, msg.ret,
            msg.data if keep else None, self.order.name(msg.stream),
        )
        if keep:
            self.data_bytes += len(msg.data)
        self._add_jobs(message, (
            (r.route, r.destination, r.nexthop, Rcpt(rid, r.address, r.orig, 0))
            for rid, r in zip(recipient_ids, msg.recipients, strict=True)
        ))

    def _done(self, count: int, data_bytes: int) -> None:
        self.active -= count
        self.data_bytes -= data_bytes

    # --- scanning the spool --------------------------------------------------------------

    async def _scan_loop(self) -> None:
        while True:
            try:
                self.scan_once()
                self._forget_idle_paths()
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
            message = WindowMessage(
                info.id, info.sender, info.arrival, info.smtputf8, info.body_8bit,
                info.envid, info.ret, None, self.order.name(info.stream),
            )
            for row in msg_rows:
                if row.next_attempt <= 0:  # `hayate queue retry`: try even a dead one
                    self._dead.pop(row.destination, None)
            self._add_jobs(message, (
                (row.route, row.destination, row.nexthop,
                 Rcpt(row.id, row.address, row.orig, row.attempts))
                for row in msg_rows
            ))
        return len(rows)

    # --- from recipients to jobs to destination FIFOs -------------------------------------

    def _add_jobs(
        self, message: WindowMessage, rcpts: Iterable[tuple[str, str, str | None, Rcpt]]
    ) -> None:
        groups: dict[GroupKey, list[Rcpt]] = {}
        verp = self.return_path
        for route, destination, nexthop, rcpt in rcpts:
            sender = message.sender
            if verp is not None and route == REMOTE:
                sender = verp.for_recipient(message.id, message.sender, rcpt.address) or sender
            groups.setdefault((route, destination, nexthop, sender), []).append(rcpt)
        step = max(1, self.dcfg.recipients_per_transaction)
        stream = message.stream
        for (route, destination, nexthop, sender), group in groups.items():
            message.pending += len(group)
            agent = self.agents.get(route) if route != REMOTE else None
            key = route if agent is not None else destination
            dest = self.destinations.get(key)
            if dest is None:
                dest = self.destinations[key] = _Destination(StreamQueues(self.order), agent)
            for i in range(0, len(group), step):
                dest.jobs.push(
                    stream, Job(message, route, destination, nexthop, group[i : i + step], sender)
                )
            self._kick(key, dest)

    def _kick(self, key: str, dest: _Destination) -> None:
        if dest.agent is not None:  # in process: no site, no shaping
            while dest.jobs and dest.runners < min(self.local_concurrency, len(dest.jobs)):
                dest.runners += 1
                self._spawn(self._local_runner(key, dest, dest.agent))
            return
        entry = self._sites.get(key)
        now = self.clock.now()
        if entry is not None and entry.expires > now:
            while dest.jobs:
                self._to_path(dest.jobs.pop(), entry, now)
            self._forget_destination(key, dest)
        elif not dest.resolving:
            dest.resolving = True
            self._spawn(self._resolve_site(key, dest))

    def _forget_destination(self, key: str, dest: _Destination) -> None:
        idle = not dest.jobs and not dest.runners and not dest.resolving
        if idle and self.destinations.get(key) is dest:
            del self.destinations[key]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sites -----------------------------------------------------------------------------

    async def _resolve_site(self, key: str, dest: _Destination) -> None:
        try:
            job = next(iter(dest.jobs), None)
            if job is not None:
                self._sites[key] = await self._site_of(job)
        except Exception:
            log.exception("site lookup for %s failed", key)
            self._sites[key] = self._entry(key, key, None, SITE_FAILURE_TTL)
        finally:
            dest.resolving = False
        if not self._stopping:
            self._kick(key, dest)

    async def _site_of(self, job: Job) -> _SiteEntry:
        shaping = self.shaping
        if shaping is None:
            return self._entry(job.destination, job.destination, None, SITE_TTL)
        if job.nexthop is not None:
            return self._entry(job.nexthop, job.destination, [], SITE_TTL)
        hosts: list[str] = []
        ttl = SITE_TTL
        if self.resolver is not None:
            try:
                answer = await self.resolver.resolve_mx(job.destination)
                hosts = [h.host for h in answer.hosts]
                if answer.implicit and not hosts:
                    hosts = [job.destination]
            except DnsError as exc:
                log.debug("%s: no MX for the site (%s); the agent will report it",
                          job.destination, exc)
                ttl = SITE_FAILURE_TTL
        return self._entry(job.destination, job.destination, hosts, ttl)

    def _entry(self, name: str, domain: str, hosts: list[str] | None, ttl: float) -> _SiteEntry:
        now = self.clock.now()
        shaping = self.shaping
        if shaping is None or hosts is None:
            return _SiteEntry(Site(name, None), PathLimits.from_delivery(self.dcfg), None,
                              now + ttl)
        site = shaping.site_for(name, hosts)
        raw = shaping.limits_for(site, domain)
        return _SiteEntry(site, PathLimits.of(raw), raw, now + ttl)

    # --- ready queues ----------------------------------------------------------------------

    def _to_path(self, job: Job, entry: _SiteEntry, now: float) -> None:
        choice = (
            self.egress.choose(job.msg.sender_domain, job.msg.stream, entry.site.provider, now)
            if self.egress is not None
            else NO_EGRESS
        )
        if not isinstance(choice, EgressChoice):
            reply = SmtpReply(451, "4.7.0", "sending volume for today reached (IP warm-up); "
                                            "waiting for the next window")
            self.recorder.postpone(job, max(choice, now), reply, now,
                                   PathInfo("", entry.site.name))
            return
        key = (choice.source, entry.site.name)
        path = self.paths.get(key)
        if path is None:
            governor = None
            if self.shaping is not None and entry.raw_limits is not None:
                governor = self.shaping.governor(entry.site)
            claims = None
            if self.connection_slots is not None:
                claims = PathClaims(self.connection_slots,
                                    limit_key("conn", choice.source, entry.site.name),
                                    self.claim_linger)
            path = self.paths[key] = ReadyQueue(
                source=choice.source, site=entry.site.name, provider=entry.site.provider,
                address=choice.address, helo=choice.helo, limits=entry.limits,
                raw_limits=entry.raw_limits, governor=governor, order=self.order,
                limiter_factory=self.limiter_factory, claims=claims,
            )
        step = path.base.recipients_per_transaction
        if len(job.rcpts) > step:
            for i in range(0, len(job.rcpts), step):
                path.jobs.push(job.msg.stream, job.split(job.rcpts[i : i + step]))
        else:
            path.jobs.push(job.msg.stream, job)
        self._kick_path(path)

    def _kick_path(self, path: ReadyQueue[Job]) -> None:
        if path.timer is not None:
            path.timer.cancel()  # a no-op when this is the timer firing
            path.timer = None
        if self._stopping:
            return
        now = self.clock.now()
        claims = path.claims
        until = path.suspended_until(now)
        if until:
            self._postpone_path(path, until, now)
            if claims is not None:
                claims.unwant()
            return
        limits = path.effective(now)
        while path.jobs and path.runners < min(limits.connections, len(path.jobs)):
            wait = path.connection_delay(now)
            if wait > 0:
                self._kick_later(path, wait)
                return
            if claims is not None and not claims.claim(limits.connections, now):
                self._kick_later(path, NODE_RETRY)  # the other workers hold the connections
                return
            path.take_connection(now)
            path.runners += 1
            self._spawn(self._path_runner(path))
        if claims is not None:
            claims.unwant()
        if not path.jobs and not path.runners and path.idle(now):
            self.paths.pop(path.key, None)

    def _kick_later(self, path: ReadyQueue[Job], delay: float) -> None:
        if path.timer is None:
            path.timer = asyncio.get_running_loop().call_later(delay, self._kick_path, path)

    def _park_claim(self, path: ReadyQueue[Job]) -> None:
        """A runner of ``path`` ended: park its claim and see that it is released in time."""
        claims = path.claims
        if claims is None:
            return
        claims.park(self.clock.now())
        if path.claims_timer is None:
            self._arm_claims(path)

    def _arm_claims(self, path: ReadyQueue[Job]) -> None:
        claims = path.claims
        expiry = claims.next_expiry() if claims is not None else None
        if expiry is None:
            return
        delay = max(CLAIM_RECHECK, expiry - self.clock.now())
        path.claims_timer = asyncio.get_running_loop().call_later(
            delay, self._expire_claims, path
        )

    def _expire_claims(self, path: ReadyQueue[Job]) -> None:
        path.claims_timer = None
        if path.claims is None or self._stopping:
            return
        if path.claims.expire(self.clock.now()):
            self._kick_path(path)
        self._arm_claims(path)

    def _forget_idle_paths(self) -> None:
        """Drop the paths that have been idle long enough (see ``ReadyQueue.idle``)."""
        now = self.clock.now()
        for path in list(self.paths.values()):
            if path.idle(now):
                self.paths.pop(path.key, None)

    def _postpone_path(self, path: ReadyQueue[Job], until: float, now: float) -> None:
        reason = path.suspension_reason(now) or "too many failures"
        reply = SmtpReply(451, "4.7.0", f"delivery to {path.site} from {path.source} "
                                        f"suspended: {reason}")
        info = PathInfo(path.source, path.site)
        for job in path.jobs.drain():
            self.recorder.postpone(job, until, reply, now, info)

    async def _path_runner(self, path: ReadyQueue[Job]) -> None:
        """One connection's worth of jobs for a path."""
        served = 0
        try:
            while path.jobs and not self._stopping:
                now = self.clock.now()
                if path.suspended_until(now):
                    break  # _kick_path below postpones what waits
                limits = path.effective(now)
                if served >= limits.messages_per_connection:
                    break
                wait = path.message_delay(now)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                job = path.jobs.pop()
                path.take_message(now)
                served += 1
                await self._attempt_remote(path, job, limits)
        finally:
            path.runners -= 1
            self._park_claim(path)
            self._kick_path(path)

    # --- attempts -------------------------------------------------------------------------

    async def _local_runner(self, key: str, dest: _Destination, agent: DeliveryAgent) -> None:
        try:
            while dest.jobs and not self._stopping:
                job = dest.jobs.pop()
                await self._attempt(job, agent)
        finally:
            dest.runners -= 1
            self._forget_destination(key, dest)

    async def _attempt_remote(
        self, path: ReadyQueue[Job], job: Job, limits: PathLimits
    ) -> None:
        info = PathInfo(path.source, path.site)
        if self.suppression is not None and job.msg.sender and job.rcpts:
            try:
                gone = await self.suppression.suppressed(
                    job.msg.sender_domain, [r.address for r in job.rcpts]
                )
            except Exception:
                log.exception("%s: suppression lookup failed; sending anyway", job.msg.id)
                gone = set()
            if gone:
                suppressed = [r for r in job.rcpts if r.address in gone]
                rest = [r for r in job.rcpts if r.address not in gone]
                now = self.clock.now()
                if suppressed:
                    self.recorder.suppress(job.split(suppressed), now, info)
                if not rest:
                    if self.egress is not None:  # nothing is sent: settle the choice's hold
                        self.egress.release(path.source, path.provider, now)
                    return
                job = job.split(rest)
        if self.egress is not None:
            now = self.clock.now()
            if self._warmup_left(path, now) == 0:
                # Chosen when the job was queued; the source's cap for today ran out since
                # (jobs in flight): choose again — another source, or wait for the window.
                self.egress.release(path.source, path.provider, now)
                site = Site(path.site, path.provider)
                self._to_path(job, _SiteEntry(site, path.base, path.raw_limits, now), now)
                return
            self.egress.sent(path.source, path.provider, len(job.rcpts), now)
        await self._attempt(job, self.agents[REMOTE], path, limits)

    def _warmup_left(self, path: ReadyQueue[Job], now: float) -> int | None:
        """Warm-up allowance of the path's source for its provider today (None: no cap)."""
        warmup = self.egress.warmup if self.egress is not None else None
        if warmup is None:
            return None
        left = warmup.remaining(path.source, path.provider, now)
        return None if left is None else max(0, left)

    async def _attempt(
        self,
        job: Job,
        agent: DeliveryAgent,
        path: ReadyQueue[Job] | None = None,
        limits: PathLimits | None = None,
    ) -> None:
        """One delivery attempt: through a path (remote delivery), or in process."""
        msg = job.msg
        now = self.clock.now()
        info = PathInfo(path.source, path.site) if path is not None else PathInfo()
        dead = self._dead.get(job.destination) if path is not None else None
        if dead is not None:
            if dead.until > now:
                reply = SmtpReply(dead.reply.code, dead.reply.enhanced,
                                  f"delivery temporarily suspended: {dead.reply.text}")
                self.recorder.record(job, [DeliveryResult(r.address, Outcome.DEFERRED, reply,
                                                          "none") for r in job.rcpts], now, info)
                return
            del self._dead[job.destination]
        data = msg.data if msg.data is not None else self.spool.message_data(msg.id)
        if data is None:  # deleted by an operator while waiting
            self.recorder.finished(job)
            return
        delivery = DeliveryJob(
            queue_id=msg.id,
            sender=job.sender,
            recipients=tuple(r.address for r in job.rcpts),
            data=data,
            destination=job.destination,
            nexthop=job.nexthop,
            smtputf8=msg.smtputf8,
            body_8bit=msg.body_8bit,
            envid=msg.envid,
            source_ip=path.address if path is not None else None,
            helo=path.helo if path is not None else None,
            messages_per_connection=limits.messages_per_connection if limits else None,
            recipients_per_transaction=limits.recipients_per_transaction if limits else None,
        )
        try:
            results = await agent.deliver(delivery)
            if len(results) != len(job.rcpts):
                raise RuntimeError(f"agent returned {len(results)} results for {len(job.rcpts)}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: delivery to %s failed; message held", msg.id, job.destination)
            self.recorder.shunt(job, f"delivery error: {exc!r}")
            return
        now = self.clock.now()
        if path is not None:
            if all(_unreachable(r) for r in results):
                until = now + min(DEAD_DESTINATION_SECONDS, self.qcfg.min_backoff)
                self._dead[job.destination] = _Dead(until, results[0].reply)
            self._after_remote(path, results, now)
        if msg.data is None and msg.headers is None:  # kept for a DSN (bounce or expiry)
            msg.headers = data[: header_block_end(data)]
        self.recorder.record(job, results, now, info)

    def _after_remote(
        self, path: ReadyQueue[Job], results: list[DeliveryResult], now: float
    ) -> None:
        path.note_sent(now)
        governor = path.governor
        if governor is None:
            return
        seen: set[SmtpReply] = set()
        for r in results:
            if r.reply in seen or not _to_governor(r):
                continue
            seen.add(r.reply)
            action = governor.on_reply(r.reply.code, r.reply.enhanced, r.reply.text, now)
            if action:
                path.last_action = action
                log.warning("path %s → %s: %s (after %s)", path.source, path.site, action,
                            r.reply)

    # --- what `hayate queue sites` shows -------------------------------------------------

    def sites_snapshot(self, now: float | None = None) -> list[dict[str, object]]:
        """One JSON-ready row per (source, site) path this worker knows."""
        when = self.clock.now() if now is None else now
        rows = []
        for path in list(self.paths.values()):
            row = path.snapshot(when)
            row["warmup_remaining"] = self._warmup_left(path, when)
            rows.append(row)
        rows.sort(key=lambda r: (str(r["source"]), str(r["site"])))
        return rows
