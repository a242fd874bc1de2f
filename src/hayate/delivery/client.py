"""One outbound SMTP client connection on a bare asyncio Protocol.

Owns the life of a single connection to one address of one host: connect (optionally from a
chosen source address), greeting, EHLO (HELO when EHLO is refused), STARTTLS according to
the TLS level, mail transactions and QUIT. It knows nothing about MX records, queues or pools.

Failures come out in two shapes:
- :class:`SessionFailed` while opening: this host cannot take mail now, try the next one
  (:class:`TlsFailed` when the TLS handshake broke: the same host may be retried in plain text);
- :class:`ConnectionBroken` during a transaction: the connection died or timed out.
Replies the server gives inside a transaction are not exceptions: :meth:`SmtpClient.send`
returns one reply per recipient.

With PIPELINING (RFC 2920) a transaction costs two round trips: MAIL, every RCPT and DATA
in one write, then the body. A pending RSET (after a transaction that stopped half way) is
sent lazily in front of the next MAIL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from hayate.core.reply import SmtpReply
from hayate.delivery.wire import (
    OutboundMessage,
    ReplyParser,
    ReplySyntaxError,
    mail_command,
    parse_ehlo,
    rcpt_command,
    size_limit,
)

log = logging.getLogger(__name__)

TlsLevel = Literal["none", "may", "encrypt"]

QUIT_GRACE = 2.0  # seconds a closing connection may take to answer QUIT


class SessionFailed(Exception):
    """Opening a session failed; ``reply`` is what to report if no other host works.

    ``client`` is set when the connection was still up: it has been sent QUIT and closes by
    itself; await its :meth:`SmtpClient.wait_closed` before shutting down the event loop.
    """

    def __init__(self, reply: SmtpReply, remote: bool = False) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.remote = remote
        self.client: SmtpClient | None = None


class TlsFailed(SessionFailed):
    """STARTTLS was accepted but the handshake failed (the connection is gone)."""


class ConnectionBroken(Exception):
    """The connection was lost or timed out inside a transaction.

    ``at_start`` is True when not a single reply to this transaction's commands arrived, so
    the server cannot have accepted anything (a cached connection that died while idle).
    """

    def __init__(self, reply: SmtpReply, at_start: bool) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.at_start = at_start


class _Lost(Exception):
    """Internal: fewer replies than expected arrived; carries the ones that did."""

    def __init__(self, why: str, partial: list[SmtpReply]) -> None:
        super().__init__(why)
        self.why = why
        self.partial = partial


@dataclass(frozen=True, slots=True)
class Transaction:
    """What one mail transaction produced: one reply per recipient, in order.

    ``mail`` is the reply to MAIL FROM. ``remote`` is False when the replies were made up
    here without asking the server (SMTPUTF8 not offered, message too large).
    """

    mail: SmtpReply
    replies: tuple[SmtpReply, ...]
    remote: bool = True


class _Wire(asyncio.Protocol):
    """The asyncio side: collects parsed replies and wakes the one reader waiting for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = ReplyParser()
        self.replies: deque[SmtpReply] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.want = 0
        self.closed = False
        self.why = "lost connection"
        self.quitting = False
        # One watchdog timer per connection instead of one timer per read: it fires at the
        # deadline it was armed for and re-arms itself when reads have moved the deadline on.
        self.deadline = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0
        self.lost: asyncio.Future[None] = loop.create_future()  # done once fully closed

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.parser.feed(data)
        except ReplySyntaxError as exc:
            self.why = f"protocol error: {exc}"
            self.abort()
            return
        if replies:
            self.replies.extend(replies)
            if self.quitting:
                self.close()
                return
            waiter = self.waiter
            if waiter is not None and len(self.replies) >= self.want and not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()
        if not self.lost.done():
            self.lost.set_result(None)

    # -- used by SmtpClient ------------------------------------------------------------
    def _wake(self) -> None:
        if self.closed and self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm(self, timeout: float) -> None:
        self.deadline = deadline = self.loop.time() + timeout
        if self.watchdog is not None:
            if self.watchdog_at <= deadline:
                return
            self.watchdog.cancel()
        self.watchdog_at = deadline
        self.watchdog = self.loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self.watchdog = None
        if self.waiter is None or self.closed:
            return  # nobody is waiting: the next read arms it again
        if self.loop.time() < self.deadline:
            self.watchdog_at = self.deadline
            self.watchdog = self.loop.call_at(self.deadline, self._check_deadline)
            return
        self.why = "timeout"
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        elif not self.lost.done():
            self.lost.set_result(None)  # never connected: nothing will call connection_lost
        self._wake()

    def close(self) -> None:
        """Close after flushing what was written (a QUIT on its way out)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise _Lost(self.why, [])
        self.transport.write(data)

    async def read(self, n: int, timeout: float) -> list[SmtpReply]:
        """The next ``n`` replies; raises _Lost with the ones that came if the link dies."""
        replies = self.replies
        if len(replies) < n and not self.closed:
            waiter = self.loop.create_future()
            self.waiter = waiter
            self.want = n
            self._arm(timeout)
            try:
                await waiter
            except BaseException:
                self.abort()
                raise
            finally:
                self.waiter = None
        if len(replies) < n:
            partial = list(replies)
            replies.clear()
            self.abort()
            raise _Lost(self.why, partial)
        if n == 1:
            return [replies.popleft()]
        return [replies.popleft() for _ in range(n)]


def _lost_reply(relay: str, why: str, stage: str) -> SmtpReply:
    if why == "timeout":
        return SmtpReply(451, "4.4.2", f"conversation with {relay} timed out while {stage}")
    return SmtpReply(451, "4.4.2", f"{why} with {relay} while {stage}")


def _refused(relay: str, reply: SmtpReply, stage: str) -> SmtpReply:
    return SmtpReply(451, "4.4.1", f"host {relay} refused to talk to me: {reply} (in {stage})")


class SmtpClient:
    """An open SMTP session with one server address, ready for transactions."""

    def __init__(
        self,
        wire: _Wire,
        host: str,
        ip: str,
        port: int,
        command_timeout: float,
    ) -> None:
        self._wire = wire
        self.host = host
        self.ip = ip
        self.port = port
        self.relay = f"{host}[{ip}]:{port}"
        self.command_timeout = command_timeout
        self.extensions: dict[str, str] = {}
        self.esmtp = True
        self.tls = False
        self.transactions = 0  # transactions started on this connection
        self.reused = False  # set by the pool when it hands out a cached connection
        self.helo_name = ""  # the name said in EHLO/HELO
        self._needs_rset = False

    # -- opening ---------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        host: str,
        ip: str,
        port: int,
        *,
        helo_name: str,
        connect_timeout: float,
        command_timeout: float,
        source_ip: str | None = None,
        tls: TlsLevel = "none",
        tls_context: ssl.SSLContext | None = None,
    ) -> SmtpClient:
        """Connect, read the greeting, EHLO/HELO and STARTTLS; raises SessionFailed."""
        loop = asyncio.get_running_loop()
        relay = f"{host}[{ip}]:{port}"
        wire = _Wire(loop)
        local = (source_ip, 0) if source_ip else None
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.create_connection(lambda: wire, ip, port, local_addr=local)
        except TimeoutError:
            wire.abort()
            raise SessionFailed(
                SmtpReply(451, "4.4.1", f"connect to {relay}: Connection timed out")
            ) from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
            raise SessionFailed(SmtpReply(451, "4.4.1", f"connect to {relay}: {reason}")) from None
        client = cls(wire, host, ip, port, command_timeout)
        client.helo_name = helo_name
        try:
            await client._start(helo_name, tls, tls_context, connect_timeout)
        except SessionFailed as exc:
            if not wire.closed:
                client.quit_nowait()
                exc.client = client
            raise
        except BaseException:
            wire.abort()
            raise
        return client

    async def _read1(self, stage: str) -> SmtpReply:
        try:
            return (await self._wire.read(1, self.command_timeout))[0]
        except _Lost as exc:
            raise SessionFailed(_lost_reply(self.relay, exc.why, stage)) from None

    def _write(self, data: bytes, stage: str) -> None:
        try:
            self._wire.write(data)
        except _Lost as exc:
            raise SessionFailed(_lost_reply(self.relay, exc.why, stage)) from None

    async def _start(
        self,
        helo_name: str,
        tls: TlsLevel,
        tls_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        greeting = await self._read1("receiving the initial server greeting")
        if not greeting.ok:
            raise SessionFailed(_refused(self.relay, greeting, "greeting"), remote=True)
        await self._hello(helo_name)
        if tls == "none":
            return
        if "STARTTLS" not in self.extensions:
            if tls == "encrypt":
                raise SessionFailed(
                    SmtpReply(451, "4.7.5", f"TLS is required, but was not offered by {self.relay}")
                )
            return
        self._write(b"STARTTLS\r\n", "sending STARTTLS")
        reply = await self._read1("sending STARTTLS")
        if reply.code != 220:
            if tls == "encrypt":
                raise SessionFailed(
                    SmtpReply(451, "4.7.5", f"TLS is required, but {self.relay} said: {reply}"),
                    remote=True,
                )
            return  # "may": carry on in plain text
        await self._handshake(tls_context, handshake_timeout)
        await self._hello(helo_name)

    async def _handshake(self, context: ssl.SSLContext | None, timeout: float) -> None:
        wire = self._wire
        if wire.replies or wire.parser.pending:
            # Anything after "220" was sent before TLS and must not be trusted (RFC 3207).
            raise TlsFailed(SmtpReply(451, "4.7.5", f"{self.relay} sent data after STARTTLS"))
        assert wire.transport is not None
        loop = wire.loop
        ctx = context if context is not None else no_verify_context()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    wire.transport, wire, ctx, server_hostname=self.host or None
                )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            wire.abort()
            reason = str(exc) or type(exc).__name__
            raise TlsFailed(
                SmtpReply(451, "4.7.5", f"TLS handshake with {self.relay} failed: {reason}")
            ) from None
        if transport is None:
            wire.abort()
            raise TlsFailed(SmtpReply(451, "4.7.5", f"TLS handshake with {self.relay} failed"))
        wire.transport = transport
        self.tls = True

    async def _hello(self, helo_name: str) -> None:
        self._write(f"EHLO {helo_name}\r\n".encode(), "sending EHLO")
        reply = await self._read1("sending EHLO")
        if reply.ok:
            self.esmtp = True
            self.extensions = parse_ehlo(reply)
            return
        if not reply.permanent:
            raise SessionFailed(_refused(self.relay, reply, "EHLO"), remote=True)
        self._write(f"HELO {helo_name}\r\n".encode(), "sending HELO")
        reply = await self._read1("sending HELO")
        if not reply.ok:
            raise SessionFailed(_refused(self.relay, reply, "HELO"), remote=True)
        self.esmtp = False
        self.extensions = {}

    # -- state -----------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        """Still connected and nothing unexpected arrived while idle."""
        wire = self._wire
        return not wire.closed and not wire.replies and not wire.parser.pending

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    # -- transactions ----------------------------------------------------------------
    async def send(self, message: OutboundMessage, recipients: Sequence[str]) -> Transaction:
        """One mail transaction; raises ConnectionBroken if the connection dies during it."""
        ext = self.extensions
        if message.smtputf8 and "SMTPUTF8" not in ext:
            reply = SmtpReply(
                550, "5.6.7", f"SMTPUTF8 is required, but was not offered by host {self.relay}"
            )
            return Transaction(reply, (reply,) * len(recipients), remote=False)
        limit = size_limit(ext)
        if limit and message.size > limit:
            reply = SmtpReply(
                552,
                "5.3.4",
                f"message size {message.size} exceeds size limit {limit} of server {self.relay}",
            )
            return Transaction(reply, (reply,) * len(recipients), remote=False)
        self.transactions += 1
        if self.pipelining:
            return await self._send_pipelined(message, recipients)
        return await self._send_stepwise(message, recipients)

    def _broken(self, exc: _Lost, stage: str, at_start: bool) -> ConnectionBroken:
        return ConnectionBroken(_lost_reply(self.relay, exc.why, stage), at_start)

    async def _send_pipelined(
        self, message: OutboundMessage, recipients: Sequence[str]
    ) -> Transaction:
        wire = self._wire
        rset = self._needs_rset
        cmds = [b"RSET\r\n"] if rset else []
        cmds.append(mail_command(message, self.extensions))
        cmds.extend(rcpt_command(r) for r in recipients)
        cmds.append(b"DATA\r\n")
        n = len(cmds)
        try:
            wire.write(b"".join(cmds))
            replies = await wire.read(n, self.command_timeout)
        except _Lost as exc:
            got = len(exc.partial) - (1 if rset else 0)
            if got > 0 and exc.partial[-1].code == 421:
                # The server said goodbye in the middle: that is its answer for the rest.
                replies = exc.partial + [exc.partial[-1]] * (n - len(exc.partial))
            else:
                stage = "MAIL FROM" if got <= 0 else "RCPT TO" if got <= len(recipients) else "DATA"
                raise self._broken(exc, f"sending {stage}", at_start=got <= 0) from None
        if rset:
            replies = replies[1:]
        mail = replies[0]
        rcpts = replies[1:-1]
        data = replies[-1]
        self._needs_rset = mail.ok
        if not mail.ok:
            if data.code == 354:
                await self._empty_data()
            return Transaction(mail, (mail,) * len(recipients))
        if not any(r.ok for r in rcpts):
            if data.code == 354:
                await self._empty_data()
            return Transaction(mail, tuple(rcpts))
        if not 300 <= data.code < 400:
            return Transaction(mail, tuple(r if not r.ok else data for r in rcpts))
        final = await self._send_body(message.body)
        return Transaction(mail, tuple(r if not r.ok else final for r in rcpts))

    async def _send_stepwise(
        self, message: OutboundMessage, recipients: Sequence[str]
    ) -> Transaction:
        wire = self._wire
        timeout = self.command_timeout
        started = False
        try:
            if self._needs_rset:
                wire.write(b"RSET\r\n")
                await wire.read(1, timeout)
                self._needs_rset = False
            wire.write(mail_command(message, self.extensions))
            mail = (await wire.read(1, timeout))[0]
            started = True
            if not mail.ok:
                return Transaction(mail, (mail,) * len(recipients))
            self._needs_rset = True
            rcpts: list[SmtpReply] = []
            for rcpt in recipients:
                wire.write(rcpt_command(rcpt))
                rcpts.append((await wire.read(1, timeout))[0])
            if not any(r.ok for r in rcpts):
                return Transaction(mail, tuple(rcpts))
            wire.write(b"DATA\r\n")
            data = (await wire.read(1, timeout))[0]
        except _Lost as exc:
            raise self._broken(exc, "sending MAIL FROM", at_start=not started) from None
        if not 300 <= data.code < 400:
            return Transaction(mail, tuple(r if not r.ok else data for r in rcpts))
        final = await self._send_body(message.body)
        return Transaction(mail, tuple(r if not r.ok else final for r in rcpts))

    async def _send_body(self, body: bytes) -> SmtpReply:
        try:
            self._wire.write(body)
            final = (await self._wire.read(1, self.command_timeout))[0]
        except _Lost as exc:
            raise self._broken(exc, "sending message body", at_start=False) from None
        self._needs_rset = False
        return final

    async def _empty_data(self) -> None:
        """The server said 354 though nobody is to receive the message: end it empty."""
        try:
            self._wire.write(b".\r\n")
            await self._wire.read(1, self.command_timeout)
        except _Lost as exc:
            raise self._broken(exc, "ending an empty DATA", at_start=False) from None
        self._needs_rset = False

    # -- closing ---------------------------------------------------------------------
    def quit_nowait(self) -> None:
        """Send QUIT and let the connection close by itself (bounded by QUIT_GRACE)."""
        wire = self._wire
        if wire.closed or wire.transport is None:
            return
        try:
            wire.write(b"QUIT\r\n")
        except _Lost:
            return
        if wire.replies or wire.parser.pending:
            wire.close()
            return
        wire.quitting = True
        wire.loop.call_later(QUIT_GRACE, wire.abort)

    async def quit(self) -> None:
        """Send QUIT, wait (briefly) for its reply, close."""
        wire = self._wire
        if wire.closed:
            return
        try:
            wire.write(b"QUIT\r\n")
            await wire.read(1, min(self.command_timeout, QUIT_GRACE))
        except _Lost:
            pass
        wire.abort()

    def abort(self) -> None:
        self._wire.abort()

    @property
    def closed(self) -> bool:
        return self._wire.closed

    def wait_closed_done(self) -> bool:
        return self._wire.lost.done()

    def on_closed(self, callback: Callable[[SmtpClient], object]) -> None:
        """Call ``callback(self)`` once the connection is gone."""
        self._wire.lost.add_done_callback(lambda _: callback(self))

    async def wait_closed(self) -> None:
        """Wait until the connection is gone (after :meth:`quit_nowait` or :meth:`abort`)."""
        await asyncio.shield(self._wire.lost)


def no_verify_context() -> ssl.SSLContext:
    """Opportunistic TLS like Postfix's "may"/"encrypt": encrypt, but do not check the peer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: nothing is verified
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
