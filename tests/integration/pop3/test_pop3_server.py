"""The POP3 server over real sockets and a real store: Python's poplib and a raw client.

Covers a whole session, the UPDATE state (DELE+QUIT removes, DELE+drop does not), \\Seen
after RETR, UIDL stability, the maildrop lock (in use, released, expired, refreshed, lost),
failed logins, timeouts, limits, pipelining, backpressure on big messages, STLS, implicit
TLS and shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import poplib
import ssl
import time

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

from hayate.mailbox.locks import MailboxLocks
from hayate.mailbox.model import DELETED, SEEN
from hayate.pop3.server import Pop3Server
from hayate.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)


def poplib_session(port: int) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", port, timeout=5)
    client.user(USER)
    client.pass_(PASSWORD)
    return client


def only_session(server: Pop3Server) -> str:
    (session,) = server.sessions
    return session.holder


async def test_poplib_reads_tops_and_deletes(start_pop3: StartPop3, deliver: Deliver,
                                             store: SqliteStore) -> None:
    bodies = [message("one", "a\r\n.dotted\r\n..two dots\r\n"), message("two"),
              message("three", "x\r\n" * 10)]
    uids = [await deliver(b) for b in bodies]
    server = await start_pop3()

    def session() -> None:
        client = poplib_session(server.port)
        assert client.stat() == (3, sum(len(b) for b in bodies))
        resp, listing, _ = client.list()
        assert resp.startswith(b"+OK 3 messages")
        assert listing == [f"{i + 1} {len(b)}".encode() for i, b in enumerate(bodies)]
        resp, lines, octets = client.retr(1)
        assert resp == f"+OK {len(bodies[0])} octets".encode()
        assert b"\r\n".join(lines) + b"\r\n" == bodies[0]  # poplib undoes the stuffing
        assert octets >= len(bodies[0])
        _, top, _ = client.top(3, 2)
        assert top[-3:] == [b"", b"x", b"x"] and b"Subject: three" in top
        assert client.dele(2) == b"+OK Marked to be deleted."
        assert client.quit() == b"+OK Logging out, messages deleted."

    await asyncio.to_thread(session)
    await settled(server)
    flags = await inbox_flags(store)
    assert sorted(flags) == [uids[0], uids[2]]
    assert SEEN in flags[uids[0]]  # RETR marks \Seen (Dovecot's default)
    assert SEEN not in flags[uids[2]]  # TOP does not
    assert server.stats.messages_deleted == 1 and server.stats.messages_retrieved == 1


async def test_dele_then_dropped_connection_deletes_nothing(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    uids = [await deliver(message(f"m{i}")) for i in range(3)]
    server = await start_pop3()
    client = await connect(server.port)
    assert await client.login() == b"+OK Logged in.\r\n"
    assert await client.command("DELE 1") == b"+OK Marked to be deleted.\r\n"
    assert (await client.command("RETR 2")).endswith(b" octets\r\n")
    await client.multiline()
    client.drop()
    await settled(server)
    flags = await inbox_flags(store)
    assert sorted(flags) == uids  # nothing deleted without QUIT (RFC 1939)
    assert SEEN in flags[uids[1]] and SEEN not in flags[uids[0]]
    assert all(DELETED not in f for f in flags.values())


async def test_uidl_is_stable_across_sessions_and_matches_imap(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    uids = [await deliver(message(f"u{i}")) for i in range(4)]
    server = await start_pop3()
    _, folder = await inbox(store)
    expected = [f"{uid:08X}{folder.uidvalidity:08X}".encode() for uid in uids]

    client = await connect(server.port)
    await client.login()
    assert await client.command("UIDL") == b"+OK\r\n"
    first = await client.multiline()
    assert first == b"".join(f"{i + 1} ".encode() + u + b"\r\n" for i, u in enumerate(expected)
                             ) + b".\r\n"
    await client.send(b"DELE 1\r\nDELE 3\r\nQUIT\r\n")
    assert await client.line() == b"+OK Marked to be deleted.\r\n"
    assert await client.line() == b"+OK Marked to be deleted.\r\n"
    assert await client.line() == b"+OK Logging out, messages deleted.\r\n"
    await settled(server)
    new_uid = await deliver(message("late"))

    client = await connect(server.port)
    await client.login()
    await client.command("UIDL")
    again = await client.multiline()
    late = f"{new_uid:08X}{folder.uidvalidity:08X}".encode()
    assert again == b"1 " + expected[1] + b"\r\n2 " + expected[3] + b"\r\n3 " + late + b"\r\n.\r\n"
    assert await client.command("UIDL 2") == b"+OK 2 " + expected[3] + b"\r\n"


async def test_new_mail_waits_for_the_next_session(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    await deliver(message("before"))
    server = await start_pop3()
    client = await connect(server.port)
    await client.login()
    await deliver(message("during"))
    assert (await client.command("STAT")).startswith(b"+OK 1 ")
    assert await client.command("RETR 2") == b"-ERR There's no message 2.\r\n"


async def test_messages_expunged_elsewhere_meanwhile(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    uids = [await deliver(message(f"e{i}")) for i in range(3)]
    server = await start_pop3()
    client = await connect(server.port)
    await client.login()
    mailboxes, folder = await inbox(store)
    await mailboxes.store_flags(folder, ((uids[0], uids[0]),), "add", [DELETED])
    await mailboxes.expunge(folder)  # an IMAP client expunges message 1
    await mailboxes.store_flags(folder, ((uids[2], uids[2]),), "add", [DELETED])  # not expunged
    assert await client.command("RETR 1") == b"-ERR Message 1 expunged.\r\n"
    assert await client.command("DELE 1") == b"+OK Marked to be deleted.\r\n"
    assert await client.command("DELE 2") == b"+OK Marked to be deleted.\r\n"
    assert await client.command("QUIT") == b"+OK Logging out, messages deleted.\r\n"
    await settled(server)
    # Message 3, flagged \Deleted by the other client but not DELEd here, is still there.
    assert list(await inbox_flags(store)) == [uids[2]]


async def test_second_login_is_in_use_until_the_first_quits(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    await deliver(message("locked"))
    server = await start_pop3()
    first = await connect(server.port)
    assert await first.login() == b"+OK Logged in.\r\n"

    def second_login() -> bytes:
        client = poplib.POP3("127.0.0.1", server.port, timeout=5)
        client.user(USER)
        with pytest.raises(poplib.error_proto) as info:
            client.pass_(PASSWORD)
        client.quit()
        reply: bytes = info.value.args[0]
        return reply

    assert await asyncio.to_thread(second_login) == (
        b"-ERR [IN-USE] Mailbox is locked by another POP3 session.")
    assert server.stats.in_use == 1
    assert await first.command("QUIT") == b"+OK Logging out.\r\n"
    await settled(server)
    second = await connect(server.port)
    assert await second.login() == b"+OK Logged in.\r\n"


async def test_in_use_keeps_the_session_in_authorization(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    server = await start_pop3()
    first = await connect(server.port)
    await first.login()
    second = await connect(server.port)
    assert await second.login() == b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    first.drop()
    await asyncio.sleep(0.2)
    assert await second.login() == b"+OK Logged in.\r\n"  # retry in the same connection


async def test_dropped_connection_releases_the_lock(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    server = await start_pop3()
    first = await connect(server.port)
    await first.login()
    first.drop()
    await settled(server)
    second = await connect(server.port)
    assert await second.login() == b"+OK Logged in.\r\n"


async def test_lock_of_a_crashed_holder_expires(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    locks = MailboxLocks(store)
    assert await locks.acquire(USER, "pop3/elsewhere/1234/dead", 0.5)  # a crashed process
    server = await start_pop3()
    client = await connect(server.port)
    assert await client.login() == b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    await asyncio.sleep(0.7)
    assert await client.login() == b"+OK Logged in.\r\n"


async def test_lock_is_refreshed_while_the_session_lives(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    server = await start_pop3(lock_ttl=0.3)
    first = await connect(server.port)
    await first.login()
    await asyncio.sleep(1.0)  # more than three times the lock's time to live
    assert not await MailboxLocks(store).acquire(USER, "someone-else", 10)
    second = await connect(server.port)
    assert await second.login() == b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    assert await first.command("NOOP") == b"+OK\r\n"


async def test_session_that_lost_its_lock_is_closed(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    uid = await deliver(message("lost"))
    server = await start_pop3(lock_ttl=0.3)
    client = await connect(server.port)
    await client.login()
    locks = MailboxLocks(store)
    await locks.release(USER, only_session(server))
    assert await locks.acquire(USER, "thief", 10)
    await client.send(b"RETR 1\r\n")
    rest = await client.closed_by_server()
    assert rest.endswith(b"-ERR [SYS/TEMP] Couldn't update POP3 session lock.\r\n")
    await settled(server)
    assert server.stats.lost_locks == 1
    assert SEEN not in (await inbox_flags(store))[uid]  # no writes without the lock


async def test_wrong_password_is_answered_after_a_delay(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3(auth_failure_delay=0.4)
    client = await connect(server.port)
    started = time.monotonic()
    assert await client.login(password="wrong") == b"-ERR [AUTH] Authentication failed.\r\n"
    assert time.monotonic() - started >= 0.4
    assert await client.login(user="nobody@hayate.test") == (
        b"-ERR [AUTH] Authentication failed.\r\n")
    assert await client.login() == b"+OK Logged in.\r\n"
    assert server.stats.auth_failures == 2


async def test_disabled_account_cannot_log_in(
        start_pop3: StartPop3, connect: Connect, account: str, store: SqliteStore) -> None:
    await store.set_disabled(USER, True)
    server = await start_pop3()
    client = await connect(server.port)
    assert await client.login() == b"-ERR [AUTH] Authentication failed.\r\n"


async def test_idle_client_is_disconnected(start_pop3: StartPop3, connect: Connect,
                                           account: str) -> None:
    server = await start_pop3(mailbox={"pop3_timeout": 0.3})
    client = await connect(server.port)
    await client.login()
    assert await client.closed_by_server() == b"-ERR Disconnected for inactivity.\r\n"
    await settled(server)
    assert server.stats.timeouts == 1


async def test_too_many_bad_commands_close_the_connection(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3(mailbox={"max_bad_commands": 3})
    client = await connect(server.port)
    await client.send(b"FOO\r\nBAR\r\nBAZ\r\nCAPA\r\n")
    assert await client.closed_by_server() == (
        b"-ERR Unknown command.\r\n" * 3 + b"-ERR Too many bad commands.\r\n")
    assert server.stats.error_disconnects == 1


async def test_over_long_line_is_refused_and_the_session_goes_on(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    await deliver(message("long"))
    server = await start_pop3(mailbox={"max_line_length": 1000})
    client = await connect(server.port)
    await client.send(b"USER " + b"x" * 200_000 + b"\r\n")
    assert await client.line() == b"-ERR Input line too long.\r\n"
    assert await client.login() == b"+OK Logged in.\r\n"
    assert (await client.command("STAT")).startswith(b"+OK 1 ")


async def test_pipelined_commands_in_one_write(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    bodies = [message(f"p{i}") for i in range(5)]
    for body in bodies:
        await deliver(body)
    server = await start_pop3()
    client = await connect(server.port)
    script = f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\n" + "".join(
        f"RETR {i}\r\nDELE {i}\r\n" for i in range(1, 6)) + "STAT\r\nQUIT\r\n"
    await client.send(script.encode())
    assert await client.line() == b"+OK\r\n"
    assert await client.line() == b"+OK Logged in.\r\n"
    assert await client.line() == f"+OK 5 {sum(map(len, bodies))}\r\n".encode()
    for body in bodies:
        assert await client.line() == f"+OK {len(body)} octets\r\n".encode()
        assert await client.multiline() == body + b".\r\n"
        assert await client.line() == b"+OK Marked to be deleted.\r\n"
    assert await client.line() == b"+OK 0 0\r\n"
    assert await client.line() == b"+OK Logging out, messages deleted.\r\n"
    assert await client.closed_by_server() == b""


async def test_big_message_is_written_as_the_client_reads(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    line = b"." + b"0123456789" * 7 + b"\r\n"
    count = 250_000
    body = b"Subject: big\r\n\r\n" + line * count  # 18 MB: more than socket buffers hold
    await deliver(body)
    server = await start_pop3()
    client = await connect(server.port)
    await client.login()
    await client.send(b"RETR 1\r\nNOOP\r\n")
    await asyncio.sleep(0.5)  # the client reads nothing for a while
    (session,) = server.sessions
    assert session.write_buffer_size < 1024 * 1024  # the server did not queue it all
    assert await client.line() == f"+OK {len(body)} octets\r\n".encode()
    got = await client.multiline(timeout=30)
    assert len(got) == len(body) + count + 3  # one more dot per line, then ".\r\n"
    assert got == body.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert await client.line() == b"+OK\r\n"  # the pipelined NOOP, after the message


async def test_client_that_never_reads_a_big_message_times_out(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver) -> None:
    await deliver(b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 250_000)
    server = await start_pop3(mailbox={"pop3_timeout": 0.5})
    client = await connect(server.port)
    await client.login()
    await client.send(b"RETR 1\r\n")
    await settled(server, timeout=10)  # closed although the client never read
    assert server.stats.timeouts == 1
    second = await connect(server.port)
    assert await second.login() == b"+OK Logged in.\r\n"  # and the lock is free


async def test_stls_then_login(start_pop3: StartPop3, deliver: Deliver,
                               client_tls: ssl.SSLContext) -> None:
    await deliver(message("secret"))
    server = await start_pop3(mailbox={"plaintext_auth": False})

    def session() -> None:
        client = poplib.POP3("localhost", server.port, timeout=5)
        capa = client.capa()
        assert "STLS" in capa and "USER" not in capa and "SASL" not in capa
        with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
            client.user(USER)
        client.stls(client_tls)
        capa = client.capa()
        assert "STLS" not in capa and capa["SASL"] == ["PLAIN"] and "USER" in capa
        assert capa["IMPLEMENTATION"] == ["Hayate"]
        client.user(USER)
        client.pass_(PASSWORD)
        assert client.stat()[0] == 1
        client.quit()

    await asyncio.to_thread(session)


async def test_implicit_tls(start_pop3: StartPop3, deliver: Deliver,
                            client_tls: ssl.SSLContext) -> None:
    await deliver(message("tls"))
    server = await start_pop3(implicit_tls=True, mailbox={"plaintext_auth": False})

    def session() -> None:
        client = poplib.POP3_SSL("localhost", server.port, timeout=5, context=client_tls)
        assert "STLS" not in client.capa()
        client.user(USER)
        client.pass_(PASSWORD)
        _, lines, _ = client.retr(1)
        assert b"Subject: tls" in lines
        client.quit()

    await asyncio.to_thread(session)


async def test_auth_plain_with_and_without_initial_response(
        start_pop3: StartPop3, connect: Connect, account: str) -> None:
    server = await start_pop3()
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    client = await connect(server.port)
    assert await client.command("AUTH") == b"+OK\r\n"
    assert await client.multiline() == b"PLAIN\r\n.\r\n"
    assert await client.command("AUTH PLAIN") == b"+ \r\n"
    assert await client.command(token.decode()) == b"+OK Logged in.\r\n"
    assert await client.command("QUIT") == b"+OK Logging out.\r\n"
    await settled(server)
    client = await connect(server.port)
    assert await client.command("AUTH PLAIN " + token.decode()) == b"+OK Logged in.\r\n"


async def test_shutdown_says_goodbye_and_releases_the_lock(
        start_pop3: StartPop3, connect: Connect, deliver: Deliver, store: SqliteStore) -> None:
    await deliver(message("bye"))
    server = await start_pop3()
    client = await connect(server.port)
    await client.login()
    await server.close()
    assert await client.closed_by_server() == b"-ERR [SYS/TEMP] Server shutting down.\r\n"
    assert not server.sessions and not server.cleanups
    assert await MailboxLocks(store).acquire(USER, "next", 10)


async def test_too_many_connections(start_pop3: StartPop3, connect: Connect) -> None:
    server = await start_pop3(max_connections=1)
    await connect(server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), 5) == (
        b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n")
    writer.close()
    assert server.stats.refused == 1
