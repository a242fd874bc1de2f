"""Real POP3 servers on 127.0.0.1 over a real SQLite store, for the in-process tests.

Every asyncio test runs twice: on asyncio's loop and on uvloop. ``store`` is a migrated
SQLite store on the real clock. ``start_pop3(...)`` starts a
server with settings as keyword arguments (``[mailbox]`` keys go in ``mailbox=``);
``deliver`` stores a message the way local delivery does; ``RawPop3`` is a byte-level
client over asyncio streams for what poplib cannot do (pipelining, dropping a connection,
reading slowly).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.loops import pytest_asyncio_loop_factories
from tests.support.store import sqlite_store

from hayate.config import MailboxConfig
from hayate.core.seams import SystemClock
from hayate.mailbox.login_guard import login_guard_for
from hayate.mailbox.model import Folder
from hayate.mailbox.service import StoreMailboxes
from hayate.pop3.server import Pop3Server, Pop3ServerSettings, start_pop3_server
from hayate.store.sqlite import SqliteStore
from hayate.tls import generate_self_signed, server_context

__all__ = ["pytest_asyncio_loop_factories"]

USER = "bob@hayate.test"
PASSWORD = "correct horse"


def message(subject: str, body: str = "Hello.\r\n") -> bytes:
    return (f"From: alice@example.test\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n\r\n{body}").encode()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pop3tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    generate_self_signed(cert, key, ["localhost"])
    return cert, key


@pytest.fixture(scope="session")
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return server_context(*tls_files)


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    """Verifies the server's certificate and its name ``localhost``, like a mail client."""
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A migrated SQLite store on the real clock (maildrop locks expire in real time)."""
    async with sqlite_store(tmp_path / "hayate.db", SystemClock()) as opened:
        yield opened


@pytest.fixture
async def account(store: SqliteStore) -> str:
    await store.add_account(USER, PASSWORD)
    return USER


Deliver = Callable[..., Awaitable[int]]


@pytest.fixture
def deliver(store: SqliteStore, account: str) -> Deliver:
    async def put(data: bytes, address: str = USER) -> int:
        return await store.deliver(address, data)

    return put


async def inbox(store: SqliteStore, address: str = USER) -> tuple[StoreMailboxes, Folder]:
    mailboxes = StoreMailboxes(store, address)
    return mailboxes, await mailboxes.folder("INBOX")


async def inbox_flags(store: SqliteStore, address: str = USER) -> dict[int, frozenset[str]]:
    """UID → flags of every message in INBOX, read through the mailbox service."""
    mailboxes, folder = await inbox(store, address)
    return {m.uid: m.flags for m in await mailboxes.messages(folder, ((1, 2**32 - 1),))}


StartPop3 = Callable[..., Awaitable[Pop3Server]]


@pytest.fixture
async def start_pop3(store: SqliteStore, server_tls: ssl.SSLContext
                     ) -> AsyncIterator[StartPop3]:
    """``await start_pop3(implicit_tls=False, tls=True, mailbox={...}, lock_ttl=...)``."""
    running: list[Pop3Server] = []

    async def start(*, tls: bool = True, mailbox: dict[str, Any] | None = None,
                    **settings: Any) -> Pop3Server:
        options: dict[str, Any] = {"plaintext_auth": True, **(mailbox or {})}
        settings.setdefault("auth_failure_delay", 0.05)
        pop3_settings = Pop3ServerSettings(
            hostname="mail.hayate.test",
            tls=server_tls if tls else None,
            mailbox=MailboxConfig(**options),
            **settings,
        )
        server = await start_pop3_server(pop3_settings, store, "127.0.0.1", 0,
                                         login_guard=login_guard_for(pop3_settings.mailbox))
        running.append(server)
        return server

    yield start
    for server in running:
        await server.close()


class RawPop3:
    """A byte-level POP3 client over a real socket, bounded by timeouts. It reads in bulk
    (a big RETR answer is a few reads, not a read per line)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._buf = b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _until(self, mark: bytes, timeout: float) -> bytes:
        """Everything up to and including ``mark`` (searched from the buffer's start)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (end := self._buf.find(mark)) < 0:
            chunk = await asyncio.wait_for(self.reader.read(1 << 20),
                                           max(deadline - loop.time(), 0.001))
            if not chunk:
                raise ConnectionError(f"closed by the server after {self._buf[-200:]!r}")
            self._buf += chunk
        out, self._buf = self._buf[: end + len(mark)], self._buf[end + len(mark) :]
        return out

    async def line(self, timeout: float = 5.0) -> bytes:
        return await self._until(b"\r\n", timeout)

    async def multiline(self, timeout: float = 5.0) -> bytes:
        """The lines after a +OK status line, up to and including the final "."."""
        if self._buf.startswith(b".\r\n"):
            return await self._until(b".\r\n", timeout)
        return await self._until(b"\r\n.\r\n", timeout)

    async def command(self, text: str) -> bytes:
        await self.send(text.encode() + b"\r\n")
        return await self.line()

    async def login(self, user: str = USER, password: str = PASSWORD) -> bytes:
        await self.send(f"USER {user}\r\nPASS {password}\r\n".encode())
        assert await self.line() == b"+OK\r\n"
        return await self.line()

    async def closed_by_server(self, timeout: float = 5.0) -> bytes:
        """What the server sent before it closed the connection (fails on a timeout)."""
        out, self._buf = self._buf, b""
        while True:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            except (ConnectionResetError, BrokenPipeError):
                return out
            if not chunk:
                return out
            out += chunk

    def drop(self) -> None:
        """Close without QUIT, like a client that crashed or lost its network."""
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()


Connect = Callable[..., Awaitable[RawPop3]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``client = await connect(port, ssl_context=None)``; reads the greeting."""
    clients: list[RawPop3] = []

    async def open_client(port: int, ctx: ssl.SSLContext | None = None) -> RawPop3:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("localhost" if ctx else "127.0.0.1", port, ssl=ctx,
                                    limit=1 << 20), 5.0
        )
        client = RawPop3(reader, writer)
        clients.append(client)
        assert await client.line() == b"+OK Hayate POP3 ready.\r\n"
        return client

    yield open_client
    for client in clients:
        client.close()


async def settled(server: Pop3Server, timeout: float = 5.0) -> None:
    """Wait until every session is gone and its cleanup (\\Seen, lock release) is done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while server.sessions or server.cleanups:
        if loop.time() > deadline:
            raise AssertionError("sessions did not end")
        await asyncio.sleep(0.01)
