"""The asyncio IMAP server: sockets, TLS and STARTTLS, literals, timeouts, output pacing.

One :class:`ImapServer` per listener (``imap`` with STARTTLS, ``imaps`` with implicit TLS).
Each connection is an ``asyncio.Protocol`` (:class:`ImapConnection`) plus one Task that runs
the command loop; the commands themselves are executed by :class:`hayate.imap.session.
ImapSession`, which writes through the connection (the ``Connection`` seam).

Strategies:
- Input: ``data_received`` only appends to an inbox; the loop feeds the inbox to the
  sans-I/O ``CommandReader`` whenever it needs bytes, so pipelined commands are parsed from
  the buffer without a round trip. Reading pauses above ``PAUSE_READING_ABOVE`` unparsed
  bytes (the reader itself bounds lines and literals).
- Output: responses are collected in a buffer and written in one ``write`` when the loop
  runs out of complete commands (responses to a pipeline are coalesced), when a
  continuation request must go out, or when the buffer passes ``FLUSH_ABOVE`` — then the
  loop waits while the transport's write buffer is over its high-water mark, so a huge
  FETCH never holds the mailbox in memory.
- Before login a connection is cheap to hold: literals are limited to
  ``PRE_LOGIN_LITERAL`` bytes (enough for LOGIN and AUTHENTICATE; ``max_literal`` once
  logged in), and the client must log in within ``[mailbox] login_timeout`` seconds of
  connecting (Dovecot's login timeout), else ``* BYE``.
- Connections per listener and process are limited (``max_connections``): one more gets
  ``* BYE Too many connections.`` and is closed at once.
- Timeouts: ``command_timeout`` between commands (autologout, ``* BYE``), measured from the
  last byte read; IDLE uses ``idle_timeout`` (see the session). Waiting for our own store
  never times the client out.
- STARTTLS: the session answers OK, then :meth:`ImapConnection.start_tls` drops whatever
  the client pipelined after the command (a new reader), upgrades the transport with
  ``loop.start_tls`` and carries on with the same session.
- Errors: a session exception answers ``NO [SERVERBUG]`` for that command, is logged and
  counted; the connection and server go on. Closing the server sends ``* BYE`` to everyone.
- Logger ``hayate.imap``: one INFO line per closed connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from hayate.config import MailboxConfig
from hayate.imap.parser import Bad, CommandReader, NeedContinuation, No
from hayate.imap.session import ChangeWatcher, ImapSession, SessionContext
from hayate.mailbox.login_guard import LoginGuard, shared_login_guard
from hayate.mailbox.model import Mailboxes
from hayate.store.base import Store

log = logging.getLogger("hayate.imap")

PAUSE_READING_ABOVE = 1 << 20  # unparsed bytes waiting in the inbox
FLUSH_ABOVE = 128 * 1024  # buffered response bytes before an early write
WRITE_HIGH_WATER = 512 * 1024  # transport write buffer limits
WRITE_LOW_WATER = 128 * 1024
PRE_LOGIN_LITERAL = 8 * 1024  # bytes of all literals of one command before login


@dataclass(frozen=True, slots=True)
class ImapServerSettings:
    """Everything one listener needs; the runtime builds it from the config."""

    hostname: str
    implicit_tls: bool = False
    tls: ssl.SSLContext | None = None
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    max_literal: int = 50 * 1024 * 1024  # bytes of one literal (APPEND's message)
    auth_failure_delay: float = 1.0  # seconds before NO [AUTHENTICATIONFAILED], like Dovecot
    tls_handshake_timeout: float = 30.0
    # Connections per listener and process; None: ``[mailbox] max_connections``.
    max_connections: int | None = None

    @property
    def connection_limit(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        return self.mailbox.max_connections


@dataclass
class ImapStats:
    """Counters of one listener in one process; ``vars(stats)`` lists them."""

    connections: int = 0
    active: int = 0
    refused: int = 0  # over max_connections
    logins: int = 0
    auth_failures: int = 0
    auth_refused: int = 0  # logins refused unchecked by the login guard
    commands: int = 0
    bad_commands: int = 0
    timeouts: int = 0
    error_disconnects: int = 0  # closed after max_bad_commands
    internal_errors: int = 0
    idles: int = 0


class ImapServer:
    """One listening IMAP service: ``await start(...)``, then ``await close()``."""

    def __init__(
        self,
        settings: ImapServerSettings,
        store: Store,
        watcher: ChangeWatcher,
        mailboxes: Callable[[str], Mailboxes] | None = None,
        login_guard: LoginGuard | None = None,
    ) -> None:
        if settings.implicit_tls and settings.tls is None:
            raise ValueError("the imaps listener (implicit TLS) needs a TLS context")
        self.settings = settings
        self.stats = ImapStats()
        self.context = SessionContext(
            hostname=settings.hostname,
            config=settings.mailbox,
            store=store,
            watcher=watcher,
            mailboxes=mailboxes or _store_mailboxes(store),
            stats=self.stats,
            starttls_available=settings.tls is not None and not settings.implicit_tls,
            auth_failure_delay=settings.auth_failure_delay,
            login_guard=login_guard or shared_login_guard(settings.mailbox),
        )
        self.connections: set[ImapConnection] = set()
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
    ) -> asyncio.Server:
        loop = self.loop = asyncio.get_running_loop()
        ssl_ctx = self.settings.tls if self.settings.implicit_tls else None
        timeout = self.settings.tls_handshake_timeout if ssl_ctx is not None else None
        if sock is not None:
            self.server = await loop.create_server(
                self._new_connection, sock=sock, ssl=ssl_ctx, ssl_handshake_timeout=timeout,
            )
        else:
            self.server = await loop.create_server(
                self._new_connection, host, port, ssl=ssl_ctx, ssl_handshake_timeout=timeout,
            )
        return self.server

    @property
    def port(self) -> int:
        if self.server is None or not self.server.sockets:
            raise RuntimeError("server not started")
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening; every session gets ``* BYE`` and is closed."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.shutdown()
        pending = [c.task for c in self.connections if c.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        for conn in list(self.connections):
            conn.abort()
        if self.server is not None:
            await self.server.wait_closed()

    def _new_connection(self) -> ImapConnection:
        return ImapConnection(self)


def _store_mailboxes(store: Store) -> Callable[[str], Mailboxes]:
    from hayate.mailbox.service import StoreMailboxes

    def open_mailboxes(address: str) -> Mailboxes:
        return StoreMailboxes(store, address)

    return open_mailboxes


class ImapConnection(asyncio.Protocol):
    """One client connection: the transport side of the ``Connection`` seam."""

    def __init__(self, server: ImapServer) -> None:
        self.server = server
        settings = server.settings
        self.loop = server.loop or asyncio.get_running_loop()
        cfg = settings.mailbox
        self.reader = CommandReader(cfg.max_line_length, _pre_login_literal(settings))
        self.session = ImapSession(server.context, self)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.peer = "-"
        self.peer_ip = ""
        self.tls_active = settings.implicit_tls
        self.closed = False
        self._inbox = bytearray()
        self._reading_paused = False
        self._input_waiter: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self._started = 0.0

    # ----------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = f"{peer[0]}:{peer[1]}"
            self.peer_ip = str(peer[0])
        server = self.server
        if len(server.connections) >= server.settings.connection_limit:
            server.stats.refused += 1
            self.closed = True
            transport.write(b"* BYE Too many connections.\r\n")
            transport.close()
            log.info("refused %s: too many connections", self.peer)
            return
        server.stats.connections += 1
        server.stats.active += 1
        server.connections.add(self)
        self._started = self._last_read = self.loop.time()
        self.task = self.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        self._inbox += data
        waiter = self._input_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self._inbox) > PAUSE_READING_ABOVE and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        server = self.server
        if self in server.connections:
            server.connections.discard(self)
            server.stats.active -= 1

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ----------------------------------------------------------------- the Connection seam

    def write(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)

    async def drain(self) -> None:
        """Write the buffer out when it is large, then wait while the client is slow.
        Raises ConnectionResetError once the client is gone (a long FETCH stops there)."""
        if self.closed:
            raise ConnectionResetError("client went away")
        if self._out_size >= FLUSH_ABOVE:
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered now; wait while the transport is over its limit. A
        client that reads nothing for ``command_timeout`` is disconnected."""
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            if self.transport is not None and not self.closed:
                self.transport.write(data)
        while self._write_paused and not self.closed:
            waiter = self._drain_waiter = self.loop.create_future()
            handle = self.loop.call_later(
                self.server.settings.mailbox.command_timeout, _set_if_pending, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._drain_waiter = None
            if self._write_paused and not self.closed:  # the timer fired, not resume_writing
                log.info("client %s stopped reading; closing", self.peer)
                self.server.stats.timeouts += 1
                if self.transport is not None:
                    self.transport.abort()
                self.closed = True

    def pipelined(self) -> bool:
        """More input is already here (the client pipelines): updates can wait."""
        return bool(self._inbox) or self.reader.buffered > 0

    async def read_line(self, timeout: float) -> bytes | None:
        """One raw line (without CRLF) for AUTHENTICATE answers and IDLE's DONE; None when
        the client went away or said nothing for ``timeout`` seconds."""
        deadline = self.loop.time() + timeout
        while True:
            line = self.reader.read_line()
            if line is not None:
                return line
            if self._inbox:
                self._feed()
                continue
            if self.closed:
                return None
            await self.flush()
            remaining = deadline - self.loop.time()
            if remaining <= 0 or not await self._wait_input(remaining):
                if self._inbox:
                    continue
                return None

    def input_ready(self) -> asyncio.Future[None]:
        """A future that completes when input (or EOF) arrives; for IDLE's wait."""
        waiter = self.loop.create_future()
        if self._inbox or self.closed or self.reader.buffered > 0:
            waiter.set_result(None)
        else:
            self._input_waiter = waiter
        return waiter

    async def start_tls(self) -> bool:
        """Upgrade to TLS after the session's OK; False (and closed) when it failed."""
        transport = self.transport
        ctx = self.server.settings.tls
        if transport is None or ctx is None:
            return False
        await self.flush()
        transport.pause_reading()
        if self._inbox or self.reader.buffered:
            log.warning("discarded input pipelined after STARTTLS from %s", self.peer)
        self._inbox.clear()
        settings = self.server.settings
        self.reader = CommandReader(
            settings.mailbox.max_line_length,
            settings.max_literal if self.session.user else _pre_login_literal(settings))
        try:
            new = await self.loop.start_tls(
                transport, self, ctx, server_side=True,
                ssl_handshake_timeout=settings.tls_handshake_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("STARTTLS failed for %s: %r", self.peer, exc)
            transport.abort()
            self.closed = True
            return False
        if new is None or self.closed:
            return False
        self.transport = new
        self.tls_active = True
        self._reading_paused = False
        self._last_read = self.loop.time()
        return True

    # ----------------------------------------------------------------- the command loop

    async def _run(self) -> None:
        session = self.session
        stats = self.server.stats
        settings = self.server.settings
        timeout = settings.mailbox.command_timeout
        login_deadline = self._started + settings.mailbox.login_timeout
        try:
            self.write(session.greeting())
            while not session.closing and not self.closed:
                item = self.reader.next()
                if item is None:
                    if self._inbox:
                        self._feed()
                        continue
                    await self.flush()
                    if self.closed:
                        break
                    deadline = self._last_read + timeout
                    if session.user is None:
                        deadline = min(deadline, login_deadline)
                    remaining = deadline - self.loop.time()
                    if remaining <= 0 or not await self._wait_input(remaining):
                        if self._inbox or self.closed:
                            continue
                        if session.user is None and self.loop.time() >= login_deadline:
                            stats.timeouts += 1
                            self.write(b"* BYE Disconnected: no login in time.\r\n")
                            break
                        if self._last_read + timeout > self.loop.time():
                            continue
                        stats.timeouts += 1
                        self.write(b"* BYE Disconnected for inactivity.\r\n")
                        break
                    continue
                if isinstance(item, NeedContinuation):
                    self.write(b"+ OK\r\n")
                    await self.flush()
                    continue
                stats.commands += 1
                if isinstance(item, (Bad, No)):
                    session.bad(item)
                else:
                    await session.execute(item)
                    self._last_read = max(self._last_read, self.loop.time())
                    if session.user is not None and self.reader.max_literal < settings.max_literal:
                        self.reader.max_literal = settings.max_literal  # logged in now
                if self._out_size >= FLUSH_ABOVE:
                    await self.flush()
            await self.flush()
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            pass  # the client went away in the middle of a command
        except Exception:
            stats.internal_errors += 1
            log.exception("internal error in IMAP connection %s", self.peer)
        finally:
            self._finish()

    def _feed(self) -> None:
        data = bytes(self._inbox)
        self._inbox.clear()
        self.reader.feed(data)
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    async def _wait_input(self, timeout: float) -> bool:
        """Wait for bytes; False on timeout or when the connection closed."""
        if self.closed:
            return False
        waiter = self.loop.create_future()
        self._input_waiter = waiter
        handle = self.loop.call_later(timeout, _set_if_pending, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._input_waiter = None
        return bool(self._inbox)

    def _wake(self) -> None:
        waiter = self._input_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        session = self.session
        session.release()
        if self.transport is not None:
            self.transport.close()
        self.closed = True
        log.info(
            "imap disconnect from %s user=%s tls=%s commands=%d seconds=%.3f",
            self.peer, session.user or "-", self.tls_active, session.commands,
            self.loop.time() - self._started,
        )

    def shutdown(self) -> None:
        """Server closing: ``* BYE`` and close (a command in progress is cut short)."""
        if self.closed or self.transport is None:
            return
        self.transport.write(b"* BYE Server shutting down.\r\n")
        self.transport.close()
        self.closed = True
        self._wake()

    def abort(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()


def _pre_login_literal(settings: ImapServerSettings) -> int:
    return min(PRE_LOGIN_LITERAL, settings.max_literal)


def _set_if_pending(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def start_imap_server(
    settings: ImapServerSettings,
    store: Store,
    watcher: ChangeWatcher,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    mailboxes: Callable[[str], Mailboxes] | None = None,
    login_guard: LoginGuard | None = None,
) -> ImapServer:
    """Build and start one listener; the result has ``.stats``, ``.port`` and ``close()``.
    ``login_guard`` defaults to the one every IMAP and POP3 listener of the process shares."""
    server = ImapServer(settings, store, watcher, mailboxes, login_guard)
    await server.start(host, port, sock=sock)
    return server
