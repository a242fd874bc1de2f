"""Remote delivery: one message to the recipients of one destination over SMTP.

:class:`RemoteDeliveryAgent` implements ``core.seams.DeliveryAgent``. Per job it
1. waits for a slot of the destination (``connections_per_destination``),
2. takes a cached session for the destination if one is idle, else walks the route
   (nexthop or MX hosts, see :mod:`hayate.delivery.route`) opening sessions until one works,
   with STARTTLS per ``DeliveryConfig.tls`` (a failed handshake under "may" is retried once
   on the same host without TLS),
3. sends the recipients in transactions of at most ``recipients_per_transaction``,
4. returns exactly one DeliveryResult per recipient, in order, and caches the session.

Per job, the scheduler's egress and shaping choices override the agent's defaults: the
connection leaves from ``job.source_ip`` (else the agent's ``source_ip``) and says EHLO
``job.helo`` (else the hostname); ``job.messages_per_connection`` and
``job.recipients_per_transaction`` replace the config's limits. Slots and cached sessions are
kept per (destination, source address), and a cached session is reused only for the same
EHLO name. MX addresses of the other family than the source address (IPv6 for an IPv4
source) are skipped.

Strategies for trouble: a cached session that dies before answering MAIL is replaced once,
silently; a 4xx to MAIL (the whole transaction) moves on to the next address, and if none is
left that 4xx is the answer; a 5xx reply is final. A connection lost inside a transaction
defers that transaction's recipients (the server may have kept the message: a possible
duplicate is better than a loss). The agent never touches queue state.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from hayate.config import DeliveryConfig
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import DeliveryJob, MxResolver
from hayate.delivery.client import (
    ConnectionBroken,
    SessionFailed,
    SmtpClient,
    TlsFailed,
    TlsLevel,
    Transaction,
    no_verify_context,
)
from hayate.delivery.pool import ConnectionPool, PoolKey
from hayate.delivery.route import Route, Target
from hayate.delivery.wire import OutboundMessage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryStats:
    """Running counters of one agent (read them; only the agent writes them)."""

    connections_opened: int = 0  # SMTP sessions set up (greeting + EHLO done)
    connections_reused: int = 0  # deliveries that started on a cached session
    connect_failures: int = 0  # addresses that could not be used (refused, timeout, 421, …)
    tls_sessions: int = 0  # sessions that went through STARTTLS
    tls_fallbacks: int = 0  # "may": handshake failed, retried in plain text
    transactions: int = 0  # MAIL transactions the server answered
    messages_sent: int = 0  # transactions in which at least one recipient was accepted
    delivered: int = 0  # recipients
    deferred: int = 0
    bounced: int = 0


class RemoteDeliveryAgent:
    """Delivers jobs by SMTP to nexthops and MX hosts; see the module docstring."""

    def __init__(
        self,
        config: DeliveryConfig,
        hostname: str,
        resolver: MxResolver,
        *,
        source_ip: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.hostname = hostname
        self.resolver = resolver
        self.source_ip = source_ip
        self.stats = DeliveryStats()
        self.pool = ConnectionPool(
            config.connections_per_destination,
            config.idle_timeout,
            config.messages_per_connection,
        )
        if tls_context is None and config.tls != "none":
            tls_context = no_verify_context()
        self.tls_context = tls_context

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        if not job.recipients:
            return []
        key: PoolKey = (job.destination, job.source_ip or self.source_ip)
        await self.pool.acquire(key)
        try:
            results = await _Delivery(self, job, key).run()
        finally:
            self.pool.release(key)
        stats = self.stats
        for r in results:
            if r.outcome is Outcome.DELIVERED:
                stats.delivered += 1
            elif r.outcome is Outcome.DEFERRED:
                stats.deferred += 1
            else:
                stats.bounced += 1
        return results

    async def close(self) -> None:
        """Close every cached connection (QUIT)."""
        await self.pool.close()


class _Delivery:
    """The state of one job's attempt: the session in use and the route, once needed."""

    def __init__(self, agent: RemoteDeliveryAgent, job: DeliveryJob, key: PoolKey) -> None:
        self.agent = agent
        self.job = job
        self.key = key
        self.message = OutboundMessage.build(
            job.sender,
            job.data,
            smtputf8=job.smtputf8,
            body_8bit=job.body_8bit,
            envid=job.envid,
        )
        self.client: SmtpClient | None = None
        self.route: Route | None = None
        config = agent.config
        self.source_ip = key[1]
        self.helo = job.helo or agent.hostname
        self.max_messages = job.messages_per_connection or config.messages_per_connection
        self.max_recipients = job.recipients_per_transaction or config.recipients_per_transaction

    def _retire(self, client: SmtpClient) -> None:
        self.agent.pool.retire(client, self.key)

    async def run(self) -> list[DeliveryResult]:
        agent = self.agent
        self.client = agent.pool.take_idle(self.key, self.helo, self.max_messages)
        if self.client is not None:
            agent.stats.connections_reused += 1
        rcpts = self.job.recipients
        step = max(1, self.max_recipients)
        results: list[DeliveryResult] = []
        try:
            for i in range(0, len(rcpts), step):
                results.extend(await self._transaction(rcpts[i : i + step]))
        except BaseException:
            if self.client is not None:
                self.client.abort()
            raise
        if self.client is not None:  # usable and not spent: _transaction retires those
            agent.pool.put_idle(self.key, self.client, self.max_messages)
        return results

    async def _transaction(self, chunk: Sequence[str]) -> list[DeliveryResult]:
        stats = self.agent.stats
        fallback: list[DeliveryResult] | None = None
        while True:
            client = self.client
            if client is None:
                await self.agent.pool.settled(self.key)
                client = await self._connect()
                if client is None:
                    return fallback or self._route_failed(chunk)
            try:
                tx = await client.send(self.message, chunk)
            except ConnectionBroken as exc:
                self.client = None
                client.abort()
                if exc.at_start:
                    # A cached session that died while idle is replaced; a fresh one that
                    # dies before answering MAIL counts as a failed address.
                    if not client.reused and self.route is not None:
                        self.route.note(_target_of(client), exc.reply)
                    log.debug("%s: %s, reconnecting", self.job.queue_id, exc.reply)
                    continue
                return [DeliveryResult(r, Outcome.DEFERRED, exc.reply, client.relay) for r in chunk]
            if tx.remote:
                stats.transactions += 1
            results = self._results(chunk, tx, client.relay)
            if tx.remote and tx.mail.temporary:
                # The whole transaction was refused for now: try the next address.
                fallback = results
                self.client = None
                self._retire(client)
                if self.route is not None and not client.reused:
                    self.route.note(_target_of(client), tx.mail)
                continue
            if any(r.outcome is Outcome.DELIVERED for r in results):
                stats.messages_sent += 1
            if not client.usable or client.transactions >= self.max_messages:
                self.client = None
                self._retire(client)
            return results

    async def _connect(self) -> SmtpClient | None:
        agent = self.agent
        config = agent.config
        stats = agent.stats
        if self.route is None:
            self.route = await Route.for_job(self.job, agent.resolver, config.port)
        route = self.route
        while (target := await route.next()) is not None:
            if self.source_ip is not None and not _same_family(self.source_ip, target.ip):
                route.note(target, _family_mismatch(target, self.source_ip))
                continue
            tls: TlsLevel = config.tls
            while True:
                try:
                    client = await SmtpClient.open(
                        target.host,
                        target.ip,
                        target.port,
                        helo_name=self.helo,
                        connect_timeout=config.connect_timeout,
                        command_timeout=config.command_timeout,
                        source_ip=self.source_ip,
                        tls=tls,
                        tls_context=agent.tls_context,
                    )
                except TlsFailed as exc:
                    route.note(target, exc.reply)
                    log.debug("%s: %s", self.job.queue_id, exc.reply)
                    if tls == "may":
                        stats.tls_fallbacks += 1
                        tls = "none"
                        continue
                    stats.connect_failures += 1
                    break
                except SessionFailed as exc:
                    if exc.client is not None:
                        agent.pool.track(exc.client, self.key)
                    route.note(target, exc.reply)
                    stats.connect_failures += 1
                    log.debug("%s: %s", self.job.queue_id, exc.reply)
                    break
                stats.connections_opened += 1
                if client.tls:
                    stats.tls_sessions += 1
                self.client = client
                return client
        return None

    def _route_failed(self, chunk: Sequence[str]) -> list[DeliveryResult]:
        assert self.route is not None
        failure = self.route.failure()
        return [DeliveryResult(r, failure.outcome, failure.reply, failure.relay) for r in chunk]

    @staticmethod
    def _results(chunk: Sequence[str], tx: Transaction, relay: str) -> list[DeliveryResult]:
        from_reply = DeliveryResult.from_reply
        remote = tx.remote
        return [
            from_reply(r, reply, relay, remote) for r, reply in zip(chunk, tx.replies, strict=True)
        ]


def _target_of(client: SmtpClient) -> Target:
    return Target(client.host, client.ip, client.port)


def _same_family(source_ip: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(source_ip).version == ipaddress.ip_address(ip).version
    except ValueError:
        return True  # let the connect itself report the problem


def _family_mismatch(target: Target, source_ip: str) -> SmtpReply:
    return SmtpReply(
        451, "4.4.1", f"connect to {target.relay}: no route from source address {source_ip}"
    )
