"""``[mailbox] max_connections_per_user`` counts IMAP and POP3 sessions together
(``hayate.mailbox.sessions``): an in-process IMAP server and POP3 server on one real SQLite
store, driven over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.integration.imap.imap_harness import (
    PASSWORD,
    USER,
    Harness,
    imap_server,
    tagged_status,
    tail,
)

from hayate.config import MailboxConfig
from hayate.mailbox.sessions import SESSIONS, SessionCounter
from hayate.pop3.server import Pop3Server, Pop3ServerSettings, start_pop3_server

TIMEOUT = 5.0


class Pop3Client:
    """Just enough POP3 for logins: one-line replies, every read bounded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Pop3Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        assert (await client.line()).startswith(b"+OK")
        return client

    async def line(self) -> bytes:
        return (await asyncio.wait_for(self.reader.readuntil(b"\r\n"), TIMEOUT))[:-2]

    async def command(self, text: str) -> bytes:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()
        return await self.line()

    async def login(self, password: str = PASSWORD) -> bytes:
        assert (await self.command(f"USER {USER}")).startswith(b"+OK")
        return await self.command(f"PASS {password}")

    async def closed(self) -> bool:
        try:
            while await asyncio.wait_for(self.reader.read(4096), TIMEOUT):
                pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def imap_and_pop3(tmp_path: Path, limit: int) -> AsyncIterator[tuple[Harness, Pop3Server]]:
    async with imap_server(tmp_path, max_connections_per_user=limit) as h:
        settings = Pop3ServerSettings(
            hostname="mail.hayate.test",
            mailbox=MailboxConfig(plaintext_auth=True, max_connections_per_user=limit),
            auth_failure_delay=0.01,
        )
        pop3 = await start_pop3_server(settings, h.store, "127.0.0.1", 0)
        try:
            yield h, pop3
        finally:
            await pop3.close()


async def wait_for_count(address: str, expected: int) -> None:
    """Sessions give their slot back when the server notices the end: bounded wait."""
    for _ in range(100):
        if SESSIONS.count(address) == expected:
            return
        await asyncio.sleep(0.02)
    assert SESSIONS.count(address) == expected


async def test_imap_sessions_count_against_pop3(tmp_path: Path) -> None:
    async with imap_and_pop3(tmp_path, limit=2) as (h, pop3):
        first = await h.login()
        await h.login()
        assert SESSIONS.count(USER) == 2
        p = await Pop3Client.connect(pop3.port)
        refused = await p.login()
        assert refused == b"-ERR [IN-USE] Maximum number of connections for this user exceeded."
        assert pop3.stats.too_many_sessions == 1 and pop3.stats.logins == 0
        # The POP3 session stays usable and may log in once an IMAP session has ended.
        await first.command("LOGOUT")
        await wait_for_count(USER, 1)
        assert (await p.login()).startswith(b"+OK")
        assert SESSIONS.count(USER) == 2
        assert (await p.command("STAT")).startswith(b"+OK 0 ")
        assert (await p.command("QUIT")).startswith(b"+OK")
        assert await p.closed()
        await wait_for_count(USER, 1)


async def test_a_pop3_session_counts_against_imap(tmp_path: Path) -> None:
    async with imap_and_pop3(tmp_path, limit=2) as (h, pop3):
        p = await Pop3Client.connect(pop3.port)
        assert (await p.login()).startswith(b"+OK")
        await h.login()
        third = await h.client()
        reply = await third.command(f"LOGIN {USER} {PASSWORD}")
        assert tail(reply).startswith(b"NO [LIMIT]")
        # A POP3 client that drops the connection without QUIT gives its slot back too.
        p.close()
        await wait_for_count(USER, 1)
        assert tagged_status(await third.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_failed_and_refused_pop3_logins_hold_no_slot(tmp_path: Path) -> None:
    async with imap_and_pop3(tmp_path, limit=2) as (_, pop3):
        wrong = await Pop3Client.connect(pop3.port)
        assert (await wrong.login("not the password")).startswith(b"-ERR [AUTH]")
        assert SESSIONS.count(USER) == 0
        holder = await Pop3Client.connect(pop3.port)
        assert (await holder.login()).startswith(b"+OK")
        # The maildrop is locked by the first POP3 session: [IN-USE], and no slot kept.
        locked = await Pop3Client.connect(pop3.port)
        assert (await locked.login()).startswith(b"-ERR [IN-USE] Mailbox is locked")
        assert SESSIONS.count(USER) == 1
        assert (await holder.command("QUIT")).startswith(b"+OK")
        await wait_for_count(USER, 0)
        for client in (wrong, locked):
            client.close()


def test_session_counter() -> None:
    counter = SessionCounter()
    assert counter.acquire("a@x.test", 2) and counter.acquire("a@x.test", 2)
    assert not counter.acquire("a@x.test", 2)
    assert counter.acquire("b@x.test", 2)
    assert counter.count("a@x.test") == 2 and counter.count("b@x.test") == 1
    counter.release("a@x.test")
    assert counter.count("a@x.test") == 1 and counter.acquire("a@x.test", 2)
    for _ in range(3):
        counter.release("a@x.test")  # an extra release never goes below zero
    assert counter.count("a@x.test") == 0 and not counter.acquire("c@x.test", 0)
