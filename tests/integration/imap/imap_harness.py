"""An in-process IMAP server over a real SQLite store, and a raw-socket client for it.

``imap_server(tmp_path, **settings)`` starts ``hayate.imap.server`` on 127.0.0.1 port 0
with a migrated store (cheap argon2), the real ``StoreMailboxes`` and ``FolderWatcher``, an
account ``amy@hayate.test`` / ``secret`` and (when ``tls``) a self-signed certificate for
``localhost``. ``RawClient`` speaks bytes: ``command`` sends one tagged command and returns
every line up to its tagged reply; every read is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.clock import FakeClock
from tests.support.store import sqlite_store

from hayate.config import MailboxConfig
from hayate.imap.keywords import KeywordCache
from hayate.imap.server import ImapServer, ImapServerSettings, start_imap_server
from hayate.mailbox.login_guard import login_guard_for
from hayate.mailbox.service import StoreMailboxes
from hayate.mailbox.watch import FolderWatcher
from hayate.store.sqlite import SqliteStore
from hayate.tls import generate_self_signed, server_context

USER = "amy@hayate.test"
PASSWORD = "secret"
READ_TIMEOUT = 5.0


def message(subject: str, body: str = "Hello.", sender: str = "bob@example.com") -> bytes:
    # A Message-ID of fixed length, the same in every run (sizes decide SORT (SIZE) orders).
    message_id = hashlib.sha256(subject.encode()).hexdigest()[:16]
    return (
        f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{message_id}@x>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


@dataclass
class Harness:
    store: SqliteStore
    watcher: FolderWatcher
    server: ImapServer
    tls_dir: Path
    clients: list[RawClient] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)  # the store's and the login guard's

    @property
    def port(self) -> int:
        return self.server.port

    def mailboxes(self, address: str = USER) -> StoreMailboxes:
        return StoreMailboxes(self.store, address)

    async def deliver(self, data: bytes, folder: str = "INBOX", address: str = USER,
                      flags: tuple[str, ...] = ()) -> int:
        uid = await self.store.deliver(address, data, folder, flags)
        return uid

    async def client(self, *, tls: bool = False) -> RawClient:
        ctx = None
        if tls:
            ctx = ssl.create_default_context(cafile=str(self.tls_dir / "cert.pem"))
        reader, writer = await asyncio.open_connection(
            "localhost" if tls else "127.0.0.1", self.port, ssl=ctx,
            server_hostname="localhost" if tls else None,
        )
        client = RawClient(reader, writer)
        self.clients.append(client)
        client.greeting = await client.line()
        return client

    async def login(self, *, user: str = USER, password: str = PASSWORD) -> RawClient:
        client = await self.client()
        reply = await client.command(f"LOGIN {user} {password}")
        assert reply[-1].startswith(b"T") and b" OK " in reply[-1], reply
        return client


class RawClient:
    """Bytes over a socket, with tags made up as ``T1``, ``T2``..."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""
        self.counter = 0

    def next_tag(self) -> str:
        self.counter += 1
        return f"T{self.counter}"

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = READ_TIMEOUT) -> bytes:
        """One response line (with any literal it announces), CRLF stripped."""
        data = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        out = data
        while out.endswith(b"}\r\n") and b"{" in out[-24:]:
            size = int(out[out.rindex(b"{") + 1:-3].rstrip(b"+"))
            out += await asyncio.wait_for(self.reader.readexactly(size), timeout)
            out += await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        return out[:-2]

    async def until_tagged(self, tag: str, timeout: float = READ_TIMEOUT) -> list[bytes]:
        lines: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            line = await self.line(timeout)
            lines.append(line)
            if line.startswith(prefix):
                return lines

    async def command(self, text: str | bytes, timeout: float = READ_TIMEOUT) -> list[bytes]:
        """Send ``<tag> text`` and return every line up to and including the tagged one."""
        tag = self.next_tag()
        raw = text.encode() if isinstance(text, str) else text
        await self.send(tag.encode() + b" " + raw + b"\r\n")
        return await self.until_tagged(tag, timeout)

    async def closed(self, timeout: float = READ_TIMEOUT) -> bool:
        """True when the server closes the connection within ``timeout`` (reading what's
        left)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(TimeoutError, ConnectionError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def tagged_status(lines: list[bytes]) -> bytes:
    """``OK``/``NO``/``BAD`` of the tagged reply."""
    return lines[-1].split(b" ", 2)[1]


@asynccontextmanager
async def imap_server(tmp_path: Path, *, tls: bool = False, quota: int = 0,
                      auth_failure_delay: float = 0.05, max_literal: int = 1 << 20,
                      **mailbox: Any) -> AsyncIterator[Harness]:
    mailbox.setdefault("plaintext_auth", True)
    mailbox.setdefault("watch_interval", 0.05)
    cfg = MailboxConfig(**mailbox)
    ctx = None
    if tls:
        generate_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", ["localhost"])
        ctx = server_context(tmp_path / "cert.pem", tmp_path / "key.pem")
    clock = FakeClock()
    async with sqlite_store(tmp_path / "hayate.db", clock) as store:
        await store.add_account(USER, PASSWORD, quota_bytes=quota)
        watcher = FolderWatcher(store, cfg.watch_interval)
        watcher.start()
        settings = ImapServerSettings(
            hostname="mx.hayate.test", tls=ctx, mailbox=cfg, max_literal=max_literal,
            auth_failure_delay=auth_failure_delay,
        )
        # A login guard of its own: failed logins of other tests must not count here.
        server = await start_imap_server(settings, store, watcher,
                                         login_guard=login_guard_for(cfg, clock))
        # Every test has its own store, whose first folders have the same ids and (on the
        # fake clock) UIDVALIDITY: the process-wide keyword cache must not carry over.
        server.context.keywords = KeywordCache()
        harness = Harness(store, watcher, server, tmp_path, clock=clock)
        try:
            yield harness
        finally:
            for client in harness.clients:
                await client.close()
            await server.close()
            await watcher.stop()


def tail(lines: list[bytes]) -> bytes:
    """The tagged reply without its tag: ``OK [CODE] text``."""
    return lines[-1].split(b" ", 1)[1]
