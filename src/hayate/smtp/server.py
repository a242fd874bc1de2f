"""The asyncio adapter around the sans-I/O SMTP machine: sockets, TLS, timers, policy, sink.

One :class:`SmtpServer` per listener (MX, submission, submissions). Each connection is an
``asyncio.Protocol`` (:class:`SmtpSession`) that feeds received bytes to an
:class:`~hayate.smtp.protocol.SmtpMachine`, turns the machine's events into calls to
``SmtpPolicy`` / ``MessageSink`` and writes the queued replies in one write per read.

Strategies:
- Policy and sink coroutines run eagerly (``smtp.eager``): when they do not suspend they cost
  no Task and no loop iteration. ``SmtpServerSettings.eager_calls=False`` turns this off.
- While a call is pending the machine parses nothing more, so pipelined replies stay in order;
  bytes keep arriving into its buffer and reading pauses above ``PAUSE_ABOVE`` buffered bytes,
  and whenever the transport's write buffer is full.
- One timer per connection, re-armed lazily from the time of the last read: command_timeout
  between reads, data_timeout for the whole DATA phase; no timeout while policy/sink work.
- STARTTLS: reading pauses at once, plaintext pipelined after the command is discarded by the
  machine (CVE-2011-0411), ``loop.start_tls`` upgrades the transport, all state is reset.
- Connection limits (total per process, per client IP) answer 421 4.7.0 and close.
- A sink that raises SmtpError answers with its reply; any other exception answers 451 4.3.0
  and is logged; the server keeps running.
- Logger ``hayate.smtp``: one INFO line per closed connection, errors with their context.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from hayate.config import Config, LimitsConfig, PolicyConfig
from hayate.core.envelope import Listener, SessionInfo
from hayate.core.reply import SmtpError, SmtpReply
from hayate.core.seams import MessageSink, SmtpPolicy
from hayate.smtp import replies as R
from hayate.smtp.eager import finish_suspended
from hayate.smtp.events import (
    Authenticate,
    CheckRecipient,
    CheckSender,
    Close,
    Event,
    MessageReceived,
    StartTls,
)
from hayate.smtp.protocol import CLOSED, DATA, WAIT, MachineConfig, SmtpMachine

log = logging.getLogger("hayate.smtp")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")

PAUSE_ABOVE = 256 * 1024  # buffered, unparsed bytes while a call is pending
_TEMP_FAILURE = SmtpReply(451, "4.3.0", "Internal error, try again later")
_AUTH_TEMP_FAILURE = SmtpReply(454, "4.7.0", "Temporary authentication failure")


@dataclass(frozen=True, slots=True)
class SmtpServerSettings:
    """Everything one listener needs; build it with :meth:`from_config` in the runtime."""

    hostname: str
    listener: Listener
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    tls: ssl.SSLContext | None = None  # STARTTLS (smtp/submission) or implicit TLS (submissions)
    relay_networks: tuple[IpNetwork, ...] = ()
    eager_calls: bool = True  # run policy/sink coroutines eagerly (see hayate.smtp.eager)
    tls_handshake_timeout: float = 30.0

    @classmethod
    def from_config(
        cls, config: Config, listener: Listener, tls: ssl.SSLContext | None
    ) -> SmtpServerSettings:
        return cls(
            hostname=config.hostname,
            listener=listener,
            limits=config.limits,
            policy=config.policy,
            tls=tls,
            relay_networks=tuple(config.relay_nets()),
        )

    def machine_config(self) -> MachineConfig:
        submission = self.listener in (Listener.SUBMISSION, Listener.SUBMISSIONS)
        if self.listener is Listener.SUBMISSIONS and self.tls is None:
            raise ValueError("the submissions listener (implicit TLS) needs a TLS context")
        lim = self.limits
        return MachineConfig(
            hostname=self.hostname,
            max_message_size=lim.max_message_size,
            max_recipients=lim.max_recipients,
            max_line_length=lim.max_line_length,
            max_bad_commands=lim.max_bad_commands,
            auth_enabled=submission,
            auth_requires_tls=self.policy.require_tls_for_auth,
            require_auth=submission,
            starttls_available=self.tls is not None and self.listener is not Listener.SUBMISSIONS,
        )


@dataclass
class SmtpStats:
    """Counters of one server (one listener in one process); ``vars(stats)`` lists them."""

    connections: int = 0  # accepted and greeted
    active: int = 0
    refused: int = 0  # over max_connections / max_connections_per_ip
    messages_accepted: int = 0
    messages_rejected: int = 0  # refused at end of DATA (size, bare LF, sink)
    auth_failures: int = 0
    timeouts: int = 0
    error_disconnects: int = 0  # closed after max_bad_commands
    internal_errors: int = 0  # exceptions from policy/sink/adapter


class SmtpServer:
    """One listening SMTP service. ``await start(...)``, then ``close()``/``wait_closed()``."""

    def __init__(self, settings: SmtpServerSettings, policy: SmtpPolicy, sink: MessageSink):
        self.settings = settings
        self.policy = policy
        self.sink = sink
        self.stats = SmtpStats()
        self.machine_cfg = settings.machine_config()
        self.greeting = R.greeting(settings.hostname)
        self.sessions: set[SmtpSession] = set()
        self.per_ip: dict[str, int] = {}
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> asyncio.Server:
        """Listen on host:port, or on an already bound ``sock`` (then host/port are ignored)."""
        loop = self.loop = asyncio.get_running_loop()
        implicit = self.settings.listener is Listener.SUBMISSIONS
        ssl_ctx = self.settings.tls if implicit else None
        timeout = self.settings.tls_handshake_timeout if implicit else None
        if sock is not None:
            self.server = await loop.create_server(
                self._new_session, sock=sock, ssl=ssl_ctx, ssl_handshake_timeout=timeout,
                backlog=backlog,
            )
        else:
            self.server = await loop.create_server(
                self._new_session, host, port, ssl=ssl_ctx, ssl_handshake_timeout=timeout,
                reuse_port=reuse_port or None, backlog=backlog,
            )
        return self.server

    @property
    def port(self) -> int:
        """The first bound port (useful after binding port 0)."""
        if self.server is None or not self.server.sockets:
            raise RuntimeError("server not started")
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop listening; idle sessions get 421 4.3.2 now, busy ones after their reply."""
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions):
            session.shutdown()

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()

    def _new_session(self) -> SmtpSession:
        return SmtpSession(self)


class SmtpSession(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_closed",
        "_counted",
        "_data_since",
        "_eager",
        "_info",
        "_info_version",
        "_last_read",
        "_loop",
        "_machine",
        "_paused_wait",
        "_paused_write",
        "_peer_ip",
        "_peer_port",
        "_pending",
        "_policy",
        "_relay_allowed",
        "_seen_accepted",
        "_seen_rejected",
        "_server",
        "_shutting_down",
        "_sink",
        "_started",
        "_timer",
        "_tls_cipher",
        "_tls_version",
        "_transport",
    )

    def __init__(self, server: SmtpServer) -> None:
        self._server = server
        self._policy = server.policy
        self._sink = server.sink
        self._eager = server.settings.eager_calls
        # asyncio.get_running_loop() costs a getpid() system call: take the server's loop.
        self._loop = server.loop or asyncio.get_running_loop()
        self._machine = SmtpMachine(server.machine_cfg)
        self._transport: asyncio.Transport | None = None
        self._peer_ip = ""
        self._peer_port = 0
        self._counted = False
        self._closed = False
        self._shutting_down = False
        self._pending: asyncio.Task[Any] | None = None
        self._paused_wait = False
        self._paused_write = False
        self._last_read = 0.0
        self._data_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._info: SessionInfo | None = None
        self._info_version = -1
        self._relay_allowed: bool | None = None
        self._tls_version: str | None = None
        self._tls_cipher: str | None = None
        self._seen_accepted = 0
        self._seen_rejected = 0
        self._started = 0.0

    # ----------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        server = self._server
        stats = server.stats
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer_ip, self._peer_port = str(peer[0]), int(peer[1])
        limits = server.settings.limits
        count = server.per_ip.get(self._peer_ip, 0) + 1
        server.per_ip[self._peer_ip] = count
        self._counted = True
        if count > limits.max_connections_per_ip or stats.active >= limits.max_connections:
            stats.refused += 1
            self._closed = True
            transport.write(R.too_many_connections(server.settings.hostname))
            transport.close()
            log.info("refused %s:%d: too many connections", self._peer_ip, self._peer_port)
            return
        stats.connections += 1
        stats.active += 1
        server.sessions.add(self)
        if server.settings.listener is Listener.SUBMISSIONS:
            self._set_tls_info(transport.get_extra_info("ssl_object"))
            self._machine.tls = True
        self._started = self._last_read = self._loop.time()
        transport.write(server.greeting)
        self._timer = self._loop.call_later(limits.command_timeout, self._on_timer)

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        try:
            ev = self._machine.feed(data)
            if ev is None and self._pending is not None:
                # A call is pending: the bytes wait in the machine; bound how many.
                if self._machine.mode == WAIT and self._machine.buffered > PAUSE_ABOVE:
                    self._pause_for_wait()
                return
            self._pump(ev)
        except Exception:
            self._internal_error("reading from client")

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        if self._counted:
            left = server.per_ip.get(self._peer_ip, 1) - 1
            if left > 0:
                server.per_ip[self._peer_ip] = left
            else:
                server.per_ip.pop(self._peer_ip, None)
            self._counted = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self in server.sessions:
            server.sessions.discard(self)
            server.stats.active -= 1
            m = self._machine
            self._count_messages()
            log.info(
                "disconnect from %s:%d helo=%s tls=%s auth=%s commands=%d errors=%d "
                "accepted=%d rejected=%d seconds=%.3f",
                self._peer_ip, self._peer_port, m.helo or "-", self._tls_version or "-",
                m.auth_user or "-", m.commands, m.bad_commands, m.accepted, m.rejected,
                self._loop.time() - self._started,
            )
        self._closed = True
        self._transport = None

    def pause_writing(self) -> None:
        self._paused_write = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_write = False
        if self._transport is not None and not self._paused_wait:
            self._transport.resume_reading()

    # ----------------------------------------------------------------- the event pump

    def _pump(self, ev: Event | None) -> None:
        """Serve events until the machine needs more bytes, a call suspends, or it is over."""
        m = self._machine
        while ev is not None:
            if isinstance(ev, CheckRecipient):
                coro_r = self._policy.check_recipient(
                    self._session_info(), ev.sender, ev.recipient, ev.declared_size
                )
                if not self._call(coro_r, m.recipient_checked, self._recipient_failed):
                    return
            elif isinstance(ev, CheckSender):
                coro_s = self._policy.check_sender(self._session_info(), ev.sender)
                if not self._call(coro_s, m.sender_checked, self._sender_failed):
                    return
            elif isinstance(ev, MessageReceived):
                coro_m = self._sink.accept(self._session_info(), ev.envelope, ev.data)
                if not self._call(coro_m, m.message_handled, self._sink_failed):
                    return
            elif isinstance(ev, Close):
                self._close(ev.reason)
                return
            elif isinstance(ev, Authenticate):
                coro_a = self._policy.authenticate(ev.username, ev.password)
                if not self._call(coro_a, self._auth_done, self._auth_failed):
                    return
            else:
                self._begin_tls(ev)
                return
            ev = m.next_event()
        data = m.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)
        if m.mode == DATA:
            if self._data_since is None:
                self._data_since = self._loop.time()
                limits = self._server.settings.limits
                if limits.data_timeout < limits.command_timeout and self._timer is not None:
                    self._timer.cancel()
                    self._timer = self._loop.call_later(limits.data_timeout, self._on_timer)
        elif self._data_since is not None:
            self._data_since = None
            self._count_messages()
        if self._shutting_down and m.mode != CLOSED:
            self.shutdown()

    def _call(
        self,
        coro: Coroutine[Any, Any, T],
        answer: Callable[[T], None],
        failed: Callable[[BaseException], None],
    ) -> bool:
        """Start a policy/sink call; True when it already finished (answer/failed was called)."""
        if self._eager:
            # The common case inline (see hayate.smtp.eager for the general helper).
            try:
                first = coro.send(None)
            except StopIteration as stop:
                answer(stop.value)
                return True
            except Exception as exc:
                failed(exc)
                return True
            task: asyncio.Task[T] = self._loop.create_task(finish_suspended(coro, first))
        else:
            task = self._loop.create_task(coro)
        self._pending = task
        if self._machine.buffered > PAUSE_ABOVE:
            self._pause_for_wait()

        def done(t: asyncio.Task[T]) -> None:
            self._pending = None
            try:
                if t.cancelled():
                    failed(asyncio.CancelledError())
                elif (exc := t.exception()) is not None:
                    failed(exc)
                else:
                    answer(t.result())
                if self._closed:
                    return
                if self._paused_wait:
                    self._paused_wait = False
                    if not self._paused_write and self._transport is not None:
                        self._transport.resume_reading()
                self._pump(self._machine.next_event())
            except Exception:
                self._internal_error("finishing a policy/sink call")

        task.add_done_callback(done)
        return False

    def _pause_for_wait(self) -> None:
        if not self._paused_wait and self._transport is not None:
            self._paused_wait = True
            self._transport.pause_reading()

    def _auth_done(self, account: str | None) -> None:
        if not account:
            self._server.stats.auth_failures += 1
        self._machine.auth_checked(account)

    def _auth_failed(self, exc: BaseException) -> None:
        if isinstance(exc, SmtpError):
            self._machine.auth_error(exc.reply)
            return
        self._log_failure("authenticate", exc)
        self._machine.auth_error(_AUTH_TEMP_FAILURE)

    def _sender_failed(self, exc: BaseException) -> None:
        self._machine.sender_checked(self._policy_error_reply(exc))

    def _recipient_failed(self, exc: BaseException) -> None:
        self._machine.recipient_checked(self._policy_error_reply(exc))

    def _policy_error_reply(self, exc: BaseException) -> SmtpReply:
        if isinstance(exc, SmtpError):
            return exc.reply
        self._log_failure("policy check", exc)
        return _TEMP_FAILURE

    def _sink_failed(self, exc: BaseException) -> None:
        if isinstance(exc, SmtpError):
            self._machine.message_handled(exc.reply)
            return
        self._log_failure("message sink", exc)
        self._machine.message_handled(_TEMP_FAILURE)

    def _log_failure(self, what: str, exc: BaseException) -> None:
        self._server.stats.internal_errors += 1
        log.error(
            "%s failed for %s:%d helo=%s auth=%s: %r", what, self._peer_ip, self._peer_port,
            self._machine.helo or "-", self._machine.auth_user or "-", exc, exc_info=exc,
        )

    # ----------------------------------------------------------------- helpers

    def _flush(self) -> None:
        data = self._machine.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)

    def _close(self, reason: str) -> None:
        self._flush()
        if reason == "too many errors":
            self._server.stats.error_disconnects += 1
            log.info("closing %s:%d: too many errors", self._peer_ip, self._peer_port)
        if self._transport is not None:
            self._transport.close()

    def _internal_error(self, what: str) -> None:
        self._server.stats.internal_errors += 1
        log.exception("internal error while %s for %s:%d", what, self._peer_ip, self._peer_port)
        self._machine.data_to_send()
        if self._transport is not None and not self._closed:
            self._transport.write(R.line(421, "4.3.0", "Internal error, closing connection"))
            self._transport.close()

    def _count_messages(self) -> None:
        m = self._machine
        stats = self._server.stats
        if m.accepted != self._seen_accepted:
            stats.messages_accepted += m.accepted - self._seen_accepted
            self._seen_accepted = m.accepted
        if m.rejected != self._seen_rejected:
            stats.messages_rejected += m.rejected - self._seen_rejected
            self._seen_rejected = m.rejected

    def _session_info(self) -> SessionInfo:
        m = self._machine
        info = self._info
        if info is None or self._info_version != m.version:
            if self._relay_allowed is None:
                nets = self._server.settings.relay_networks
                self._relay_allowed = _in_networks(self._peer_ip, nets)
            info = SessionInfo(
                listener=self._server.settings.listener,
                peer_ip=self._peer_ip,
                peer_port=self._peer_port,
                helo=m.helo or "",
                esmtp=m.esmtp,
                tls_version=self._tls_version,
                tls_cipher=self._tls_cipher,
                auth_user=m.auth_user,
                relay_allowed=self._relay_allowed,
            )
            self._info = info
            self._info_version = m.version
        return info

    def _set_tls_info(self, ssl_object: Any) -> None:
        if ssl_object is None:
            return
        self._tls_version = ssl_object.version()
        cipher = ssl_object.cipher()
        self._tls_cipher = cipher[0] if cipher else None
        self._info = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._transport is None:
            return
        limits = self._server.settings.limits
        now = self._loop.time()
        if self._pending is not None:
            deadline = now + limits.command_timeout  # our own work never times the client out
        else:
            deadline = self._last_read + limits.command_timeout
            if self._data_since is not None:
                deadline = min(deadline, self._data_since + limits.data_timeout)
        if now < deadline:
            self._timer = self._loop.call_later(deadline - now, self._on_timer)
            return
        self._server.stats.timeouts += 1
        log.info("timeout for %s:%d", self._peer_ip, self._peer_port)
        self._machine.close_with(R.timeout(self._server.settings.hostname))
        self._close("timeout")

    def shutdown(self) -> None:
        """Server closing: say 421 and close now, or after the pending call answered."""
        self._shutting_down = True
        if self._pending is not None or self._closed or self._transport is None:
            return
        self._machine.close_with(R.shutting_down(self._server.settings.hostname))
        self._close("shutdown")

    # ----------------------------------------------------------------- STARTTLS

    def _begin_tls(self, ev: StartTls) -> None:
        transport = self._transport
        assert transport is not None
        self._flush()
        transport.pause_reading()
        if ev.discarded:
            log.warning(
                "discarded %d bytes pipelined after STARTTLS from %s:%d",
                ev.discarded, self._peer_ip, self._peer_port,
            )
        self._pending = self._loop.create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        ctx = self._server.settings.tls
        assert ctx is not None
        try:
            new = await self._loop.start_tls(
                transport, self, ctx, server_side=True,
                ssl_handshake_timeout=self._server.settings.tls_handshake_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            self._pending = None
            log.info("STARTTLS failed for %s:%d: %r", self._peer_ip, self._peer_port, exc)
            transport.abort()
            return
        self._pending = None
        if new is None or self._closed:
            return
        self._transport = new
        self._set_tls_info(new.get_extra_info("ssl_object"))
        self._last_read = self._loop.time()
        self._machine.tls_started()
        try:
            self._pump(self._machine.next_event())
        except Exception:
            self._internal_error("after STARTTLS")


def _in_networks(ip: str, networks: Iterable[IpNetwork]) -> bool:
    nets = tuple(networks)
    if not nets or not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in nets)


async def start_smtp_server(
    settings: SmtpServerSettings,
    policy: SmtpPolicy,
    sink: MessageSink,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
) -> SmtpServer:
    """Build and start one listener; the returned object has ``.server``, ``.stats``, ``.port``."""
    smtp = SmtpServer(settings, policy, sink)
    await smtp.start(host, port, sock=sock, reuse_port=reuse_port)
    return smtp
