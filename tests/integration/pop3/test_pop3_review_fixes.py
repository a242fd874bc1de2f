"""POP3 fixes from the review of issue 4, over real sockets and a real store: replies to a
client that pipelines and never reads stay bounded, password guessing across connections is
limited, and a failed UPDATE leaves no message flagged \\Deleted."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.pop3.conftest import (
    PASSWORD,
    USER,
    Connect,
    Deliver,
    StartPop3,
    inbox,
    inbox_flags,
    message,
    settled,
)

from hayate.config import MailboxConfig
from hayate.mailbox.login_guard import login_guard_for
from hayate.mailbox.model import DELETED, Mailboxes, UidRanges
from hayate.mailbox.service import StoreMailboxes
from hayate.pop3 import wire as W
from hayate.pop3.server import Pop3ServerSettings, start_pop3_server
from hayate.store.base import Store, StoreError
from hayate.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)


async def test_pipelining_client_that_never_reads_gets_bounded_replies(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    for i in range(50):
        await deliver(message(f"m{i}"))
    server = await start_pop3()
    client = await connect(server.port)
    assert await client.login() == b"+OK Logged in.\r\n"
    client.writer.transport.pause_reading()  # reads nothing from now on
    rounds, per_round = 10, 1000
    (session,) = server.sessions
    for _ in range(rounds):
        client.writer.write(b"UIDL\r\n" * per_round)  # ~1.7 MB of answers a round
        await asyncio.sleep(0.1)
        assert session.write_buffer_size < 512 * 1024
    other = await connect(server.port)  # the loop is not held by that client
    assert await asyncio.wait_for(other.command("CAPA"), 2.0) == b"+OK\r\n"
    client.writer.transport.resume_reading()
    for _ in range(rounds * per_round):
        assert await client.line() == b"+OK\r\n"
        answer = await client.multiline()
        assert answer.count(b"\r\n") == 51
    assert await client.command("QUIT") == b"+OK Logging out.\r\n"


async def test_logins_over_the_address_limit_are_refused_unchecked(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3(mailbox={"max_auth_failures_per_address": 2})
    for _ in range(2):
        client = await connect(server.port)
        assert await client.login(password="wrong") == W.AUTH_FAILED
    client = await connect(server.port)
    assert await client.login() == W.AUTH_FAILED
    assert server.stats.auth_refused == 1


async def test_success_resets_the_address_count(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3(mailbox={"max_auth_failures_per_address": 2})
    for _ in range(2):
        client = await connect(server.port)
        assert await client.login(password="wrong") == W.AUTH_FAILED
        assert await client.login() == b"+OK Logged in.\r\n"
        assert await client.command("QUIT") == b"+OK Logging out.\r\n"
        await settled(server)
    assert server.stats.auth_refused == 0


async def test_parallel_guesses_cannot_pass_the_ip_limit(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3(mailbox={"max_auth_failures_per_ip": 3},
                              auth_failure_delay=0.2)
    clients = [await connect(server.port) for _ in range(8)]
    replies = await asyncio.gather(
        *(c.login(user=f"u{i}@hayate.test", password="x") for i, c in enumerate(clients)))
    assert set(replies) == {W.AUTH_FAILED}
    assert server.stats.auth_refused == 5


class ExpungeFails(StoreMailboxes):
    async def remove(self, folder: object, uids: UidRanges) -> list[int]:
        raise StoreError("disk full")


def _failing_mailboxes(store: Store, address: str) -> Mailboxes:
    return ExpungeFails(store, address)


async def test_failed_update_leaves_nothing_flagged_deleted(
        store: SqliteStore, connect: Connect, deliver: Deliver) -> None:
    first = await deliver(message("flagged elsewhere"))
    second = await deliver(message("plain"))
    mailboxes, folder = await inbox(store)
    await mailboxes.store_flags(folder, ((first, first),), "add", [DELETED])
    config = MailboxConfig(plaintext_auth=True)
    server = await start_pop3_server(
        Pop3ServerSettings(hostname="mail.hayate.test", mailbox=config,
                           auth_failure_delay=0.0),
        store, "127.0.0.1", 0, mailboxes=_failing_mailboxes,
        login_guard=login_guard_for(config))
    try:
        client = await connect(server.port)
        assert await client.login(USER, PASSWORD) == b"+OK Logged in.\r\n"
        assert await client.command("DELE 1") == W.MARKED
        assert await client.command("DELE 2") == W.MARKED
        assert await client.command("QUIT") == W.UPDATE_FAILED
        await settled(server)
        flags = await inbox_flags(store)
        assert DELETED in flags[first]  # another client's \Deleted stays
        assert DELETED not in flags[second]  # ours is taken off again
        assert server.stats.messages_deleted == 0
    finally:
        await server.close()
