"""Runtime wiring: the only place that builds concrete objects and connects the layers.

One *worker* is a complete node: SMTP listeners, ingest, a spool shard, a scheduler and the
delivery agents, on one asyncio loop. ``hayate serve`` runs one worker per CPU core (see
``hayate.serve``); they share the listening sockets, and each owns ``spool/shard-N.db``.

    SMTP server ─► RelayPolicy (store)        Scheduler ─► LocalDeliveryAgent (store)
        │                                        ▲    ├──► RemoteDeliveryAgent (resolver)
        └──► Ingest ─► Spool (group commit) ─────┘    └──► BounceProcessor (bounce domain)
               │                                   shaping, egress + warm-up, suppression,
               └─ filters: InboundAuthFilter         VERP return paths, EventRecorder
                           (MX port), DkimSigningFilter (outbound mail)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hayate.auth.dkim_keys import DkimKeyStore
from hayate.auth.inbound import InboundAuthFilter
from hayate.auth.signing import DkimSigningFilter
from hayate.bounces.parse import parse_message
from hayate.bounces.processor import BounceProcessor
from hayate.bounces.suppression import SuppressionService
from hayate.bounces.verp import codec_from_config
from hayate.config import Config
from hayate.core.envelope import Listener
from hayate.core.events import DeliveryEvent
from hayate.core.seams import DeliveryAgent, SystemClock
from hayate.core.sharedtable import NodeSlots, SharedTable
from hayate.delivery.egress import Egress
from hayate.delivery.local import LocalDeliveryAgent
from hayate.delivery.remote import RemoteDeliveryAgent
from hayate.dns.resolver import CachingResolver
from hayate.events.recorder import EventRecorder
from hayate.ingest.ingest import Ingest, IngestFilter
from hayate.ingest.routing import BOUNCE, Router
from hayate.policy.relay import RelayPolicy
from hayate.queue.nodelimits import node_limits
from hayate.queue.scheduler import Scheduler
from hayate.queue.shaping import Shaping
from hayate.queue.warmup import WarmupTracker
from hayate.smtp.server import SmtpServer, SmtpServerSettings, start_smtp_server
from hayate.store import open_store
from hayate.store.base import Store
from hayate.store.spool import Spool, adopt_shard, shard_paths, spool_path
from hayate.tls import server_context

if TYPE_CHECKING:
    from hayate.mailbox.watch import FolderWatcher

log = logging.getLogger("hayate.runtime")


class MailServer(Protocol):
    """An IMAP or POP3 listener as the runtime sees it."""

    @property
    def stats(self) -> object: ...

    async def close(self) -> None: ...


SMTP_LISTENERS = {
    "smtp": Listener.MX,
    "submission": Listener.SUBMISSION,
    "submissions": Listener.SUBMISSIONS,
}
STATS_INTERVAL = 2.0
RETENTION_FIRST_DELAY = 60.0  # seconds after start: let the listeners settle first
RETENTION_INTERVAL = 3600.0


def stats_dir(cfg: Config) -> Path:
    return cfg.data_dir / "run"


@dataclass
class WorkerStats:
    """Counters one worker publishes for ``/metrics`` (summed over workers)."""

    pid: int = 0
    accepted: int = 0
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    held: int = 0
    dsns: int = 0
    active: int = 0
    spool_commits: int = 0
    smtp: dict[str, int] = field(default_factory=dict)
    imap: dict[str, int] = field(default_factory=dict)
    pop3: dict[str, int] = field(default_factory=dict)


class Worker:
    """Everything one worker process runs."""

    def __init__(self, cfg: Config, index: int, sockets: dict[str, socket.socket],
                 table: SharedTable | None = None) -> None:
        self.cfg = cfg
        self.index = index
        self.sockets = sockets
        clock = SystemClock()
        self.store: Store = open_store(cfg.store.url, cfg.sqlite_path)
        self.spool = Spool(spool_path(cfg.spool_dir, index), index)
        self.resolver = CachingResolver(cfg.dns.nameservers, cfg.dns.timeout, cfg.dns.cache_size)
        self.remote = RemoteDeliveryAgent(cfg.delivery, cfg.hostname, self.resolver)
        # Several workers: shaping limits and connections_per_destination hold node-wide.
        node = node_limits(table, index) if table is not None else None
        if node is not None:
            self.remote.pool.share(node.connection_slots)
        if table is not None:  # [mailbox] max_connections_per_user holds node-wide too
            from hayate.mailbox.sessions import SESSIONS

            SESSIONS.share(NodeSlots(table, index))
        self.local = LocalDeliveryAgent(self.store)
        self.router = Router(cfg.local_domains, cfg.transport, bounce_domain=cfg.bounces.domain)
        self.ingest = Ingest(
            hostname=cfg.hostname,
            spool=self.spool,
            router=self.router,
            expand_alias=self.store.expand,
            filters=ingest_filters(cfg, self.resolver),
            streams=cfg.streams,
        )
        # Deliverability: events, suppression, VERP, bounce processing, shaping, egress.
        self.events = EventRecorder(self.store, cfg.events, clock) if cfg.events.enabled else None
        self.suppression = SuppressionService(self.store, cfg.suppression, clock)
        verp = codec_from_config(cfg.bounces, cfg.data_dir)
        self.warmup = (
            WarmupTracker(cfg.warmup, cfg.egress.sources, cfg.data_dir / "warmup.db", clock)
            if any(source.warmup for source in cfg.egress.sources)
            else None
        )
        agents: dict[str, DeliveryAgent] = {
            "local": self.local,
            "remote": self.remote,
            BOUNCE: BounceProcessor(
                parse_message, verp, self.suppression, self.events or _NoEvents(), clock
            ),
        }
        self.scheduler = Scheduler(
            spool=self.spool,
            agents=agents,
            queue_cfg=cfg.queue,
            delivery_cfg=cfg.delivery,
            hostname=cfg.hostname,
            send_bounce=self._send_bounce,
            clock=clock,
            streams_cfg=cfg.streams,
            resolver=self.resolver,
            shaping=Shaping.from_config(cfg.shaping, cfg.delivery),
            egress=Egress(cfg.egress, cfg.hostname, self.warmup),
            suppression=self.suppression,
            notify_suppressed=cfg.suppression.notify_sender,
            return_path=verp,
            events=self.events,
            limiter_factory=node.limiter_factory if node is not None else None,
            connection_slots=node.connection_slots if node is not None else None,
        )
        self.ingest.feed = self.scheduler
        self.policy = RelayPolicy(
            self.store, cfg.local_domains, cfg.policy, bounce_domain=cfg.bounces.domain
        )
        self.smtp_servers: list[SmtpServer] = []
        self.mail_servers: list[tuple[str, MailServer]] = []  # ("imap" | "pop3", listener)
        self.watcher: FolderWatcher | None = None
        self._background: list[asyncio.Task[None]] = []

    async def _send_bounce(self, recipient: str, dsn: bytes) -> str:
        return await self.ingest.inject("", [recipient], dsn, origin="bounce")

    def adopt_orphan_shards(self) -> None:
        """Shards left by workers that no longer exist (fewer workers than last time)."""
        count = self.cfg.worker_count
        for path in shard_paths(self.cfg.spool_dir):
            shard = int(path.stem.split("-")[1])
            if shard >= count and shard % count == self.index:
                moved = adopt_shard(self.spool, path)
                log.info("took over %d message(s) from %s", moved, path.name)

    async def start(self) -> None:
        self.adopt_orphan_shards()
        await self.store.create()
        if self.events is not None:
            self.events.start()
        self.spool.committer.start()
        await self.scheduler.start()
        tls = None
        if self.cfg.tls.cert and self.cfg.tls.key:
            tls = server_context(self.cfg.tls.cert, self.cfg.tls.key)
        for name, listener in SMTP_LISTENERS.items():
            sock = self.sockets.get(name)
            if sock is None:
                continue
            settings = SmtpServerSettings(
                hostname=self.cfg.hostname,
                listener=listener,
                limits=self.cfg.limits,
                policy=self.cfg.policy,
                tls=tls,
                relay_networks=tuple(self.cfg.relay_nets()),
            )
            server = await start_smtp_server(settings, self.policy, self.ingest, sock=sock)
            self.smtp_servers.append(server)
        await self._start_mailbox_servers(tls)
        http_sock, https_sock = self.sockets.get("http"), self.sockets.get("https")
        if http_sock is not None or https_sock is not None:
            from hayate.http.app import start_http_server

            self._background.append(
                asyncio.get_running_loop().create_task(
                    start_http_server(
                        self.cfg,
                        http_sock,
                        store=self.store,
                        bound_ports={n: s.getsockname()[1] for n, s in self.sockets.items()},
                        tls_sock=https_sock,
                        tls=tls,
                    )
                )
            )
        self._background.append(asyncio.get_running_loop().create_task(self._publish_stats()))
        if self.index == 0 and self.cfg.mailbox.retention:
            self._background.append(
                asyncio.get_running_loop().create_task(self._retention_sweeps())
            )

    async def _start_mailbox_servers(self, tls: ssl.SSLContext | None) -> None:
        """IMAP and POP3 listeners (each only when configured), sharing one folder watcher."""
        wanted = [n for n in ("imap", "imaps", "pop3", "pop3s") if n in self.sockets]
        if not wanted:
            return
        if tls is None and not self.cfg.mailbox.plaintext_auth:
            log.warning("IMAP/POP3 without [tls] cert and key: nobody can log in "
                        "(set [mailbox] plaintext_auth = true only for loopback tests)")
        if any(n.startswith("imap") for n in wanted):
            from hayate.imap.server import ImapServerSettings, start_imap_server
            from hayate.mailbox.watch import FolderWatcher

            self.watcher = FolderWatcher(self.store, self.cfg.mailbox.watch_interval)
            self.watcher.start()
            for name in ("imap", "imaps"):
                sock = self.sockets.get(name)
                if sock is None:
                    continue
                imap_settings = ImapServerSettings(
                    hostname=self.cfg.hostname,
                    implicit_tls=name == "imaps",
                    tls=tls,
                    mailbox=self.cfg.mailbox,
                    max_literal=self.cfg.limits.max_message_size,
                    auth_failure_delay=self.cfg.mailbox.auth_failure_delay,
                )
                imap = await start_imap_server(imap_settings, self.store, self.watcher, sock=sock)
                self.mail_servers.append(("imap", imap))
        for name in ("pop3", "pop3s"):
            sock = self.sockets.get(name)
            if sock is None:
                continue
            from hayate.pop3.server import Pop3ServerSettings, start_pop3_server

            pop3_settings = Pop3ServerSettings(
                hostname=self.cfg.hostname,
                implicit_tls=name == "pop3s",
                tls=tls,
                mailbox=self.cfg.mailbox,
            )
            pop3 = await start_pop3_server(pop3_settings, self.store, sock=sock)
            self.mail_servers.append(("pop3", pop3))

    async def _retention_sweeps(self) -> None:
        """Worker 0 applies the ``[[mailbox.retention]]`` rules soon after start, then hourly."""
        from hayate.mailbox.retention import sweep

        await asyncio.sleep(RETENTION_FIRST_DELAY)
        while True:
            try:
                removed = await sweep(self.store, self.cfg.mailbox.retention, time.time())
                if removed:
                    log.info("retention: expunged %d old message(s)", removed)
            except Exception:
                log.exception("retention sweep failed; trying again in an hour")
            await asyncio.sleep(RETENTION_INTERVAL)

    def stats(self) -> WorkerStats:
        s = self.scheduler.stats
        smtp: dict[str, int] = {}
        for server in self.smtp_servers:
            _add_counters(smtp, server.stats)
        imap: dict[str, int] = {}
        pop3: dict[str, int] = {}
        for kind, mail_server in self.mail_servers:
            _add_counters(imap if kind == "imap" else pop3, mail_server.stats)
        return WorkerStats(
            pid=os.getpid(),
            accepted=self.ingest.accepted,
            delivered=s.delivered,
            deferred=s.deferred,
            bounced=s.bounced,
            held=s.held,
            dsns=s.dsns,
            active=self.scheduler.active,
            spool_commits=self.spool.committer.commits,
            smtp=smtp,
            imap=imap,
            pop3=pop3,
        )

    async def _publish_stats(self) -> None:
        """Every few seconds: counters for /metrics (worker-N.json) and the shaping paths for
        ``hayate queue sites`` (sites-N.json), each replaced atomically."""
        folder = stats_dir(self.cfg)
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            _write_json(folder / f"worker-{self.index}.json", asdict(self.stats()))
            _write_json(folder / f"sites-{self.index}.json", self.scheduler.sites_snapshot())
            await asyncio.sleep(STATS_INTERVAL)

    async def stop(self) -> None:
        for server in self.smtp_servers:
            server.close()
        for _, mail_server in self.mail_servers:
            await mail_server.close()
        if self.watcher is not None:
            await self.watcher.stop()
        for task in self._background:
            task.cancel()
        await self.scheduler.stop()
        await self.spool.committer.stop()
        await self.remote.close()
        await self.suppression.drain()
        if self.events is not None:
            await self.events.stop()
        if self.warmup is not None:
            self.warmup.close()
        await self.store.close()
        self.spool.close()


def _add_counters(total: dict[str, int], stats: object) -> None:
    """Add a listener's integer counters (the fields of its stats object) into ``total``."""
    for key, value in vars(stats).items():
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value


def _write_json(target: Path, value: object) -> None:
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    tmp.replace(target)


class _NoEvents:
    """The event sink when ``[events] enabled = false``."""

    def record(self, event: DeliveryEvent) -> None:
        return None


def ingest_filters(cfg: Config, resolver: CachingResolver) -> list[IngestFilter]:
    """Inbound checks first (they read the message as it arrived), DKIM signing last (it
    signs the final headers). A broken key file stops the start with a readable error."""
    filters: list[IngestFilter] = []
    if cfg.auth.enabled:
        filters.append(InboundAuthFilter(cfg.auth, cfg.hostname, resolver))
    if cfg.dkim.sign:
        keys = DkimKeyStore(cfg.dkim_dir)
        keys.reload()
        filters.append(DkimSigningFilter(cfg.dkim, keys))
    return filters


async def run_worker(cfg: Config, index: int, sockets: dict[str, socket.socket],
                     stop: asyncio.Event, table: SharedTable | None = None) -> None:
    worker = Worker(cfg, index, sockets, table)
    await worker.start()
    log.info("worker %d (pid %d) running", index, os.getpid())
    try:
        await stop.wait()
    finally:
        started = time.monotonic()
        await worker.stop()
        log.info("worker %d stopped in %.1fs", index, time.monotonic() - started)
