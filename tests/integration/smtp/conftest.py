"""Real SMTP servers on 127.0.0.1 for the integration tests, with an in-test policy and sink.

Every test runs twice: on asyncio's loop and on uvloop. The policy and sink implement our own
seams (core.seams.SmtpPolicy / MessageSink): accounts in a dict, accepted messages recorded in
a list. Special headers steer the sink: ``X-Sink: crash`` raises a plain exception,
``X-Sink: refuse`` raises SmtpError, ``X-Sink: slow`` awaits before answering (exercises the
suspended-call path), ``X-Sink: hold`` waits until the test sets ``sink.release``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.support.loops import pytest_asyncio_loop_factories  # noqa: F401 - pytest hook

from hayate.config import LimitsConfig, PolicyConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo, domain_of
from hayate.core.reply import SmtpError, SmtpReply
from hayate.smtp.server import SmtpServer, SmtpServerSettings, start_smtp_server
from hayate.tls import client_context_no_verify, generate_self_signed, server_context

USER = "user@example.test"
PASSWORD = "s3cret pass"
LOCAL_DOMAINS = {"example.test", "y.test"}


class DictPolicy:
    def __init__(self) -> None:
        self.accounts = {USER: PASSWORD}
        self.auth_calls = 0

    async def authenticate(self, username: str, password: str) -> str | None:
        self.auth_calls += 1
        return username if self.accounts.get(username) == password else None

    async def check_sender(self, session: SessionInfo, sender: str) -> SmtpReply | None:
        if sender == "bad@x.test":
            return SmtpReply(550, "5.7.1", "Sender refused")
        return None

    async def check_recipient(
        self,
        session: SessionInfo,
        sender: str,
        recipient: str,
        declared_size: int | None = None,
    ) -> SmtpReply | None:
        if domain_of(recipient) in LOCAL_DOMAINS or session.auth_user or session.relay_allowed:
            return None
        return SmtpReply(554, "5.7.1", "Relay access denied")


@dataclass
class Received:
    session: SessionInfo
    envelope: Envelope
    data: bytes


@dataclass
class ListSink:
    messages: list[Received] = field(default_factory=list)
    counter: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)  # for ``X-Sink: hold``

    async def accept(self, session: SessionInfo, envelope: Envelope, data: bytes) -> SmtpReply:
        if b"X-Sink: hold" in data:
            await self.release.wait()
        if b"X-Sink: crash" in data:
            raise RuntimeError("disk on fire")
        if b"X-Sink: refuse" in data:
            raise SmtpError(554, "5.6.0", "Content refused")
        if b"X-Sink: slow" in data:
            await asyncio.sleep(0.02)
        self.counter += 1
        self.messages.append(Received(session, envelope, data))
        return SmtpReply(250, "2.0.0", f"Ok: queued as Q{self.counter}")


@dataclass
class Running:
    server: SmtpServer
    policy: DictPolicy
    sink: ListSink

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    generate_self_signed(cert, key, ["localhost", "127.0.0.1"])
    return cert, key


@pytest.fixture(scope="session")
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return server_context(*tls_files)


@pytest.fixture
def client_tls() -> ssl.SSLContext:
    return client_context_no_verify()


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server(server_tls: ssl.SSLContext) -> AsyncIterator[StartServer]:
    """``await start_server(Listener.MX, max_recipients=2, ...)``: limits as keyword arguments."""
    running: list[Running] = []

    async def start(
        listener: Listener = Listener.MX,
        *,
        tls: bool = True,
        relay_networks: tuple[str, ...] = (),
        require_tls_for_auth: bool = True,
        eager_calls: bool = True,
        **limits: Any,
    ) -> Running:
        settings = SmtpServerSettings(
            hostname="mx.test",
            listener=listener,
            limits=LimitsConfig(**limits),
            policy=PolicyConfig(require_tls_for_auth=require_tls_for_auth),
            tls=server_tls if tls else None,
            relay_networks=tuple(ipaddress.ip_network(n) for n in relay_networks),
            eager_calls=eager_calls,
        )
        policy, sink = DictPolicy(), ListSink()
        server = await start_smtp_server(settings, policy, sink, "127.0.0.1", 0)
        run = Running(server, policy, sink)
        running.append(run)
        return run

    yield start
    for run in running:
        run.server.close()
    for run in running:
        await run.server.wait_closed()


class RawClient:
    """A byte-level SMTP client over a real socket (asyncio streams), bounded by timeouts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, timeout: float = 5.0) -> bytes:
        """One complete (possibly multi-line) reply."""
        lines: list[bytes] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise ConnectionError(f"closed after {b''.join(lines)!r}")
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)

    async def replies(self, count: int) -> list[bytes]:
        return [await self.reply() for _ in range(count)]

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF) within ``timeout``."""
        try:
            rest = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return rest == b""

    async def starttls(self, ctx: ssl.SSLContext) -> None:
        await self.writer.start_tls(ctx)

    def close(self) -> None:
        self.writer.close()


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``client = await connect(port)``; reads the greeting; closed at the end of the test."""
    clients: list[RawClient] = []

    async def open_client(
        port: int, ctx: ssl.SSLContext | None = None, greeting: bool = True
    ) -> RawClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx), 5.0
        )
        client = RawClient(reader, writer)
        clients.append(client)
        if greeting:
            assert await client.reply() == b"220 mx.test ESMTP Hayate\r\n"
        return client

    yield open_client
    for client in clients:
        client.close()
