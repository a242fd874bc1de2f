"""The asyncio adapter around the sans-I/O POP3 machine: sockets, TLS, timers, the store.

One :class:`Pop3Server` per listener (``pop3`` with STLS, ``pop3s`` with implicit TLS). Each
connection is an ``asyncio.Protocol`` (:class:`Pop3Session`) that feeds received bytes to a
:class:`~hayate.pop3.protocol.Pop3Machine` and serves its events through
:class:`~hayate.pop3.backend.Pop3Backend` in a task, one at a time.

Strategies:
- While an event is served the machine parses nothing more, so pipelined replies stay in
  order; bytes keep arriving into its buffer and reading pauses above ``PAUSE_ABOVE``.
- Writes are coalesced: the replies to up to ``COMMANDS_PER_TURN`` pipelined commands go
  out in one write; more buffered commands are parsed in a later loop turn, so one client
  cannot hold the loop. While the transport's write buffer is above its high-water mark
  (``pause_writing``) nothing is parsed and reading pauses; ``resume_writing`` carries on.
  A client that pipelines without reading thus holds at most one turn of replies.
  A long RETR/TOP answer is written chunk by chunk, waiting whenever the transport asks to
  pause (the client reads slowly) and reading nothing meanwhile.
- A failed login is answered after ``auth_failure_delay`` seconds (Dovecot waits 2 s).
  Logins are counted per address and client IP by the process-wide ``LoginGuard`` (shared
  with IMAP); over its limit they get ``-ERR [AUTH]`` without the password being checked.
- The maildrop lock is refreshed every third of its time to live; a session that loses it
  (the store says another holder has it) is told ``-ERR [SYS/TEMP]`` and closed.
- When a session ends without QUIT nothing is deleted; \\Seen marks from RETR are applied
  and the lock released in a cleanup task that ``Pop3Server.close`` waits for.
- One timer per connection: ``pop3_timeout`` since the client last sent or read anything
  (also while it does not read a RETR answer); our own store work never times it out.
- Connection limit per listener and process (``max_connections``, default ``[mailbox]
  max_connections``): ``-ERR [SYS/TEMP]`` and close.
- Sessions per account (``[mailbox] max_connections_per_user``, counted together with IMAP
  in ``hayate.mailbox.sessions``): a login over it gets ``-ERR [IN-USE]``; the session goes on.
- An unexpected exception answers ``-ERR [SYS/TEMP] Internal error…``, is logged, and closes
  that connection; the server keeps running.
- Logger ``hayate.pop3``: one INFO line per closed connection, errors with their context.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from hayate.config import MailboxConfig
from hayate.mailbox.login_guard import LoginGuard, shared_login_guard
from hayate.pop3 import wire as W
from hayate.pop3.backend import (
    AuthFailed,
    AuthRefused,
    MailboxesFactory,
    MaildropInUse,
    MaildropLocks,
    OpenMaildrop,
    Pop3Backend,
    TooManySessions,
)
from hayate.pop3.events import Close, Event, Fetch, Login, StartTls, Update
from hayate.pop3.protocol import CLOSED, MachineConfig, Pop3Machine
from hayate.store.base import Store

log = logging.getLogger("hayate.pop3")

PAUSE_ABOVE = 64 * 1024  # buffered, unparsed bytes while an event is served
COMMANDS_PER_TURN = 32  # pipelined commands parsed per loop turn
CLEANUP_WAIT = 10.0  # seconds close() waits for sessions to release their locks
CLOSE_GRACE = 5.0  # seconds a closing connection gets to finish (TLS close_notify), then abort


@dataclass(frozen=True, slots=True)
class Pop3ServerSettings:
    """Everything one listener needs; the runtime builds it from the config."""

    hostname: str
    implicit_tls: bool = False  # pop3s: TLS from the first byte
    tls: ssl.SSLContext | None = None  # STLS on pop3, required for pop3s
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    # Seconds before "-ERR [AUTH] Authentication failed."; None: ``[mailbox]
    # auth_failure_delay``.
    auth_failure_delay: float | None = None
    lock_ttl: float = 60.0  # the maildrop lock's time to live, refreshed every third of it
    max_connections: int | None = None  # per listener and process; None: [mailbox]'s
    tls_handshake_timeout: float = 30.0

    @property
    def connection_limit(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        return self.mailbox.max_connections

    @property
    def failure_delay(self) -> float:
        if self.auth_failure_delay is not None:
            return self.auth_failure_delay
        return self.mailbox.auth_failure_delay

    def machine_config(self) -> MachineConfig:
        if self.implicit_tls and self.tls is None:
            raise ValueError("the pop3s listener (implicit TLS) needs a TLS context")
        return MachineConfig(
            max_line_length=self.mailbox.max_line_length,
            max_bad_commands=self.mailbox.max_bad_commands,
            plaintext_auth=self.mailbox.plaintext_auth,
            starttls_available=self.tls is not None and not self.implicit_tls,
        )


@dataclass
class Pop3Stats:
    """Counters of one server (one listener in one process); ``vars(stats)`` lists them."""

    connections: int = 0  # accepted and greeted
    active: int = 0
    refused: int = 0  # over max_connections
    logins: int = 0
    auth_failures: int = 0
    auth_refused: int = 0  # logins refused unchecked by the login guard
    in_use: int = 0  # logins refused because another session held the maildrop
    too_many_sessions: int = 0  # logins refused over [mailbox] max_connections_per_user
    messages_retrieved: int = 0
    messages_deleted: int = 0
    timeouts: int = 0
    error_disconnects: int = 0  # closed after max_bad_commands
    lost_locks: int = 0
    internal_errors: int = 0


class Pop3Server:
    """One listening POP3 service: ``await start(...)``, then ``await close()``."""

    def __init__(self, settings: Pop3ServerSettings, backend: Pop3Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.stats = Pop3Stats()
        self.machine_cfg = settings.machine_config()
        self.sessions: set[Pop3Session] = set()
        self.cleanups: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.holder_prefix = f"pop3/{socket.gethostname()}/{os.getpid()}"

    async def start(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        backlog: int = 256,
    ) -> asyncio.Server:
        """Listen on host:port, or on an already bound ``sock`` (then host/port are ignored)."""
        loop = self.loop = asyncio.get_running_loop()
        implicit = self.settings.implicit_tls
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
                backlog=backlog,
            )
        return self.server

    @property
    def port(self) -> int:
        """The first bound port (useful after binding port 0)."""
        if self.server is None or not self.server.sockets:
            raise RuntimeError("server not started")
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening; idle sessions get ``-ERR [SYS/TEMP] Server shutting down.`` now,
        busy ones when their command is done; then wait (bounded) for their cleanups."""
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions):
            session.shutdown()
        deadline = asyncio.get_running_loop().time() + CLEANUP_WAIT
        while (self.sessions or self.cleanups) and asyncio.get_running_loop().time() < deadline:
            if self.cleanups:
                await asyncio.wait(list(self.cleanups), timeout=0.5)
            else:
                await asyncio.sleep(0.05)

    def _new_session(self) -> Pop3Session:
        return Pop3Session(self)


class Pop3Session(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: Pop3Server) -> None:
        self._server = server
        self._backend = server.backend
        self._loop = server.loop or asyncio.get_running_loop()
        self._machine = Pop3Machine(server.machine_cfg, tls=server.settings.implicit_tls)
        self._transport: asyncio.Transport | None = None
        self._peer = "-"
        self._client_ip = ""
        self._parse_soon = False  # a _continue is scheduled
        self.holder = f"{server.holder_prefix}/{secrets.token_hex(6)}"  # in the lock
        self._opened: OpenMaildrop | None = None
        self._updated = False  # the UPDATE state ran (QUIT)
        self._pending: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused_read = False
        self._paused_write = False
        self._closed = False  # the connection is gone
        self._closing = False  # we closed it (the transport may still be finishing)
        self._counted = False
        self._cleaned = False
        self._shutting_down = False
        self._lock_lost = False
        self._deleted = 0
        self._last_activity = 0.0
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def user(self) -> str | None:
        """The account, once logged in."""
        return self._machine.user

    @property
    def write_buffer_size(self) -> int:
        """Bytes written and not yet taken by the client (what backpressure bounds)."""
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    # ----------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        server = self._server
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer = f"{peer[0]}:{peer[1]}"
            self._client_ip = str(peer[0])
        if len(server.sessions) >= server.settings.connection_limit:
            server.stats.refused += 1
            self._closed = True
            self._cleaned = True
            transport.write(W.TOO_MANY_CONNECTIONS)
            transport.close()
            log.info("refused %s: too many connections", self._peer)
            return
        server.sessions.add(self)
        server.stats.connections += 1
        server.stats.active += 1
        self._counted = True
        self._started = self._last_activity = self._loop.time()
        transport.write(self._machine.greeting())
        self._timer = self._loop.call_later(server.settings.mailbox.pop3_timeout, self._on_timer)

    def data_received(self, data: bytes) -> None:
        self._last_activity = self._loop.time()
        try:
            self._machine.receive(data)
        except Exception:
            self._internal_error("reading from client")
            return
        if self._pending is not None or self._paused_write or self._parse_soon:
            if self._machine.buffered > PAUSE_ABOVE:
                self._pause_reading()
            return
        self._continue()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        server = self._server
        if self._counted:
            self._counted = False
            server.stats.active -= 1
            m = self._machine
            log.info(
                "disconnect from %s user=%s tls=%s commands=%d errors=%d retrieved=%d "
                "deleted=%d seconds=%.3f",
                self._peer, m.user or "-", "yes" if m.tls else "no", m.commands,
                m.bad_commands, m.retrieved, self._deleted, self._loop.time() - self._started,
            )
        if self._pending is None:
            self._start_cleanup()

    def pause_writing(self) -> None:
        self._paused_write = True

    def resume_writing(self) -> None:
        self._paused_write = False
        self._last_activity = self._loop.time()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        elif self._pending is None:
            self._continue_soon()

    # ----------------------------------------------------------------- the event pump

    def _continue(self) -> None:
        """Parse and serve up to ``COMMANDS_PER_TURN`` buffered commands, unless an event
        is being served or the client is not reading our replies; more in a later turn."""
        self._parse_soon = False
        if self._pending is not None or self._closed or self._closing:
            return
        m = self._machine
        if self._paused_write:
            self._pause_reading()
            return
        try:
            self._pump(m.next_event(COMMANDS_PER_TURN))
        except Exception:
            self._internal_error("serving commands")
            return
        if self._pending is not None or self._closed or self._closing:
            return
        if self._paused_write:
            self._pause_reading()
        elif m.line_ready:
            self._continue_soon()
        else:
            self._resume_reading()  # no whole line left: more bytes are needed

    def _continue_soon(self) -> None:
        if not self._parse_soon:
            self._parse_soon = True
            self._loop.call_soon(self._continue)

    def _pump(self, ev: Event | None) -> None:
        """Serve the machine's next event: start a task for one that needs the store, or
        write, close or start TLS."""
        m = self._machine
        if (self._shutting_down or self._lock_lost) and not isinstance(ev, (Update, Close)):
            self._end_early()
            return
        if isinstance(ev, (Login, Fetch, Update)):
            self._flush()
            self._pending = self._loop.create_task(self._serve(ev))
            if m.buffered > PAUSE_ABOVE:
                self._pause_reading()
        elif isinstance(ev, Close):
            self._close(ev.reason)
        elif isinstance(ev, StartTls):
            self._begin_tls(ev)
        else:
            self._flush()

    def _served(self) -> bool:
        """The event being served is done; False when the connection is gone or closing
        (then the cleanup starts)."""
        self._pending = None
        if self._closed or self._closing:
            self._start_cleanup()
            return False
        return True

    async def _serve(self, ev: Login | Fetch | Update) -> None:
        """One event that needs the store, then the replies, then the next event."""
        try:
            if isinstance(ev, Login):
                await self._login(ev)
            elif isinstance(ev, Fetch):
                assert self._opened is not None
                body = await self._backend.body(self._opened, ev.uid)
                self._machine.fetched(body)
                if body is not None and ev.lines is None:
                    self._server.stats.messages_retrieved += 1
            else:
                await self._update(ev)
            self._flush()
            stream = self._machine.take_stream()
            if stream is not None:
                await self._write_stream(stream)
        except Exception:
            if self._served():
                self._internal_error("serving " + type(ev).__name__)
            return
        if not self._served():
            return
        self._continue()

    async def _login(self, ev: Login) -> None:
        stats = self._server.stats
        m = self._machine
        try:
            opened = await self._backend.login(ev.username, ev.password, self.holder,
                                               self._client_ip)
        except AuthFailed as exc:
            stats.auth_failures += 1
            if isinstance(exc, AuthRefused):
                stats.auth_refused += 1
                log.info("login refused unchecked for %r from %s: too many failures",
                         ev.username[:100], self._peer)
            else:
                log.info("authentication failed for %r from %s", ev.username[:100], self._peer)
            await asyncio.sleep(self._server.settings.failure_delay)
            m.login_failed(W.AUTH_FAILED)
            return
        except MaildropInUse:
            stats.in_use += 1
            m.login_failed(W.IN_USE, counted=False)
            return
        except TooManySessions:
            stats.too_many_sessions += 1
            log.info("refused %r from %s: too many sessions", ev.username[:100], self._peer)
            m.login_failed(W.TOO_MANY_SESSIONS, counted=False)
            return
        except Exception as exc:
            self._log_failure("login", exc)
            m.login_failed(W.TEMP_FAILURE, counted=False)
            return
        stats.logins += 1
        self._opened = opened
        if self._closed:
            return  # the cleanup releases the lock
        m.logged_in(opened.address, opened.maildrop)
        self._refresher = self._loop.create_task(self._refresh_lock(opened.address))

    async def _update(self, ev: Update) -> None:
        assert self._opened is not None
        try:
            self._deleted = await self._backend.update(self._opened, ev.deleted, ev.seen)
        except Exception as exc:
            self._log_failure("update", exc)
            self._machine.updated(False)
            return
        self._updated = True
        self._server.stats.messages_deleted += self._deleted
        self._machine.updated(True)

    async def _write_stream(self, stream: Iterator[bytes]) -> None:
        """Write a long answer chunk by chunk, waiting while the transport is paused."""
        for chunk in stream:
            transport = self._transport
            if transport is None or self._closed or self._closing:
                return
            transport.write(chunk)
            if self._paused_write:
                self._drained = self._loop.create_future()
                await self._drained
                self._drained = None

    # ----------------------------------------------------------------- the maildrop lock

    async def _refresh_lock(self, address: str) -> None:
        every = self._backend.lock_ttl / 3
        while not self._closed:
            await asyncio.sleep(every)
            if self._closed:
                return
            try:
                held = await self._backend.refresh(address, self.holder)
            except Exception as exc:
                self._log_failure("refreshing the maildrop lock", exc)
                continue  # try again; the lock outlives a few failed refreshes
            if not held:
                self._server.stats.lost_locks += 1
                log.warning("maildrop lock of %s lost by %s", address, self._peer)
                self._lock_lost = True
                if self._pending is None:
                    self._end_early()
                return

    def _start_cleanup(self) -> None:
        """Once the connection is gone and no event is served: stop refreshing, apply the
        \\Seen marks of a session that did not QUIT, release the lock."""
        if self._cleaned:
            return
        self._cleaned = True
        server = self._server
        server.sessions.discard(self)
        if self._refresher is not None:
            self._refresher.cancel()
        opened = self._opened
        if opened is None:
            return
        self._backend.end_session(opened.address)
        task = self._loop.create_task(self._cleanup(opened))
        server.cleanups.add(task)
        task.add_done_callback(server.cleanups.discard)

    async def _cleanup(self, opened: OpenMaildrop) -> None:
        try:
            if not self._updated and not self._lock_lost:
                seen = opened.maildrop.seen_uids()
                if seen:
                    await self._backend.update(opened, (), seen)
        except Exception as exc:
            self._log_failure("flagging \\Seen after a disconnect", exc)
        finally:
            try:
                await self._backend.release(opened.address, self.holder)
            except Exception as exc:
                self._log_failure("releasing the maildrop lock", exc)

    # ----------------------------------------------------------------- helpers

    def _flush(self) -> None:
        data = self._machine.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)

    def _close(self, reason: str) -> None:
        """Write what is queued and close. The session is over now: the cleanup (lock
        release) does not wait for the client to acknowledge the close."""
        self._flush()
        if reason == "too many errors":
            self._server.stats.error_disconnects += 1
            log.info("closing %s: too many bad commands", self._peer)
        self._closing = True
        transport = self._transport
        if transport is not None:
            transport.close()
            self._loop.call_later(CLOSE_GRACE, self._abort, transport)
        if self._pending is None:
            self._start_cleanup()

    def _abort(self, transport: asyncio.Transport) -> None:
        if not self._closed and transport is self._transport:
            transport.abort()

    def _end_early(self) -> None:
        """Shutdown or a lost lock, while no event is served: say why and close."""
        if self._closed or self._closing or self._machine.mode == CLOSED:
            return
        self._machine.close_with(W.LOCK_LOST if self._lock_lost else W.SHUTTING_DOWN)
        self._close("lock lost" if self._lock_lost else "shutdown")

    def _pause_reading(self) -> None:
        if not self._paused_read and self._transport is not None:
            self._paused_read = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._paused_read and self._transport is not None:
            self._paused_read = False
            self._transport.resume_reading()

    def _internal_error(self, what: str) -> None:
        self._server.stats.internal_errors += 1
        log.exception("internal error while %s for %s", what, self._peer)
        self._machine.close_with(W.TEMP_FAILURE)
        self._close("internal error")

    def _log_failure(self, what: str, exc: BaseException) -> None:
        self._server.stats.internal_errors += 1
        log.error("%s failed for %s user=%s: %r", what, self._peer,
                  self._machine.user or "-", exc, exc_info=exc)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._closing or self._transport is None:
            return
        timeout = self._server.settings.mailbox.pop3_timeout
        now = self._loop.time()
        waiting_for_client = self._pending is None or self._drained is not None
        if not waiting_for_client:
            self._last_activity = now  # our own work never times the client out
        deadline = self._last_activity + timeout
        if now < deadline:
            self._timer = self._loop.call_later(deadline - now, self._on_timer)
            return
        self._server.stats.timeouts += 1
        log.info("timeout for %s", self._peer)
        if self._pending is not None:
            self._transport.abort()  # in the middle of an answer: no room for a reply
            return
        self._machine.close_with(W.TIMEOUT)
        self._close("timeout")

    def shutdown(self) -> None:
        """Server closing: say so and close now, or once the event being served is done."""
        self._shutting_down = True
        if self._pending is None:
            self._end_early()

    # ----------------------------------------------------------------- STLS

    def _begin_tls(self, ev: StartTls) -> None:
        transport = self._transport
        assert transport is not None
        self._flush()
        transport.pause_reading()
        if ev.discarded:
            log.warning("discarded %d bytes pipelined after STLS from %s",
                        ev.discarded, self._peer)
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
            log.info("STLS failed for %s: %r", self._peer, exc)
            if self._served():
                transport.abort()
            return
        if not self._served() or new is None:
            return
        self._transport = new
        self._last_activity = self._loop.time()
        self._machine.tls_started()
        self._resume_reading()
        self._continue()


async def start_pop3_server(
    settings: Pop3ServerSettings,
    store: Store,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    mailboxes: MailboxesFactory | None = None,
    locks: MaildropLocks | None = None,
    login_guard: LoginGuard | None = None,
) -> Pop3Server:
    """Build and start one listener; the returned object has ``.stats``, ``.port``,
    ``close()``. ``mailboxes``/``locks`` default to the store-backed implementations,
    ``login_guard`` to the one every IMAP and POP3 listener of the process shares."""
    backend = Pop3Backend(
        store, mailboxes=mailboxes, locks=locks, lock_ttl=settings.lock_ttl,
        max_sessions_per_user=settings.mailbox.max_connections_per_user,
        login_guard=login_guard or shared_login_guard(settings.mailbox),
    )
    server = Pop3Server(settings, backend)
    await server.start(host, port, sock=sock)
    return server
