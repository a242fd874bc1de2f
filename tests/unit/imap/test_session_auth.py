"""IMAP sessions before login: greeting and capabilities, LOGIN, AUTHENTICATE PLAIN, STARTTLS,
the TLS rule for passwords, failed logins, limits and timeouts — over real sockets to an
in-process server on a real SQLite store."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from pathlib import Path

from tests.integration.imap.imap_harness import (
    PASSWORD,
    USER,
    RawClient,
    imap_server,
    tagged_status,
)


def caps(line: bytes) -> set[bytes]:
    start = line.index(b"CAPABILITY ") + len(b"CAPABILITY ")
    end = line.index(b"]", start) if b"]" in line[start:] else len(line)
    return set(line[start:end].split())


async def test_greeting_and_capabilities_before_and_after_login(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.client()
        assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        assert c.greeting.endswith(b"Hayate ready.")
        before = caps(c.greeting)
        assert {b"AUTH=PLAIN", b"SASL-IR", b"LITERAL+", b"ID", b"ENABLE", b"IDLE"} <= before
        assert b"LOGINDISABLED" not in before and b"STARTTLS" not in before  # no TLS set up
        reply = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert reply[-1].startswith(b"T1 OK [CAPABILITY IMAP4rev1 ")
        after = caps(reply[-1])
        for cap in (b"UIDPLUS", b"MOVE", b"IDLE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE",
                    b"NAMESPACE", b"UNSELECT", b"QUOTA", b"SORT", b"LIST-STATUS", b"ESEARCH",
                    b"LIST-EXTENDED", b"CHILDREN", b"ENABLE", b"ID", b"LITERAL+"):
            assert cap in after, cap
        assert b"AUTH=PLAIN" not in after
        listed = await c.command("CAPABILITY")
        assert caps(listed[0]) == after


async def test_wrong_password_is_refused_after_a_delay(tmp_path: Path) -> None:
    async with imap_server(tmp_path, auth_failure_delay=0.3) as h:
        c = await h.client()
        started = time.monotonic()
        reply = await c.command(f"LOGIN {USER} wrong")
        assert time.monotonic() - started >= 0.3
        assert reply == [b"T1 NO [AUTHENTICATIONFAILED] Authentication failed."]
        unknown = await c.command("LOGIN nobody@hayate.test secret")
        assert unknown == [b"T2 NO [AUTHENTICATIONFAILED] Authentication failed."]
        ok = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert tagged_status(ok) == b"OK"
        assert h.server.stats.auth_failures == 2 and h.server.stats.logins == 1


async def test_disabled_account_cannot_log_in(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.store.set_disabled(USER, True)
        c = await h.client()
        reply = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert reply[-1].startswith(b"T1 NO [AUTHENTICATIONFAILED]")


async def test_passwords_need_tls_unless_plaintext_auth(tmp_path: Path) -> None:
    async with imap_server(tmp_path, tls=True, plaintext_auth=False) as h:
        c = await h.client()
        before = caps(c.greeting)
        assert {b"STARTTLS", b"LOGINDISABLED"} <= before and b"AUTH=PLAIN" not in before
        refused = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert refused[-1].startswith(b"T1 NO [PRIVACYREQUIRED]")
        auth = await c.command(b"AUTHENTICATE PLAIN " + base64.b64encode(
            f"\0{USER}\0{PASSWORD}".encode()))
        assert auth[-1].startswith(b"T2 NO [PRIVACYREQUIRED]")
        assert tagged_status(await c.command("SELECT INBOX")) == b"BAD"  # not logged in

        # STARTTLS on a fresh connection, then the same LOGIN works.
        plain = await h.client()
        ok = await plain.command("STARTTLS")
        assert ok == [b"T1 OK Begin TLS negotiation now."]
        ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        await plain.writer.start_tls(ctx, server_hostname="localhost")
        listed = await plain.command("CAPABILITY")
        after_tls = caps(listed[0])
        assert b"AUTH=PLAIN" in after_tls
        assert b"STARTTLS" not in after_tls and b"LOGINDISABLED" not in after_tls
        again = await plain.command("STARTTLS")
        assert again[-1].startswith(b"T3 BAD")
        assert tagged_status(await plain.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_implicit_tls_client_logs_in(tmp_path: Path) -> None:
    async with imap_server(tmp_path, tls=True, plaintext_auth=False) as h:
        # The same server object with implicit TLS: a second listener, as ``imaps``.
        from hayate.imap.server import ImapServerSettings, start_imap_server

        settings = ImapServerSettings(
            hostname="mx", implicit_tls=True, tls=h.server.settings.tls,
            mailbox=h.server.settings.mailbox,
        )
        imaps = await start_imap_server(settings, h.store, h.watcher)
        try:
            ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            reader, writer = await asyncio.open_connection(
                "localhost", imaps.port, ssl=ctx, server_hostname="localhost")
            c = RawClient(reader, writer)
            c.greeting = await c.line()
            assert b"AUTH=PLAIN" in caps(c.greeting) and b"STARTTLS" not in caps(c.greeting)
            assert tagged_status(await c.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"
            await c.close()
        finally:
            await imaps.close()


async def test_authenticate_plain_initial_response_and_continuation(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        c = await h.client()
        reply = await c.command(b"AUTHENTICATE PLAIN " + token)
        assert reply[-1].startswith(b"T1 OK [CAPABILITY IMAP4rev1")

        c2 = await h.client()
        await c2.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert await c2.line() == b"+ "
        await c2.send(token + b"\r\n")
        assert (await c2.line()).startswith(b"a1 OK [CAPABILITY")

        c3 = await h.client()
        await c3.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert await c3.line() == b"+ "
        await c3.send(b"*\r\n")
        assert (await c3.line()).startswith(b"a1 BAD")
        await c3.send(b"a2 AUTHENTICATE PLAIN\r\n")
        assert await c3.line() == b"+ "
        await c3.send(b"not base64!\r\n")
        assert (await c3.line()).startswith(b"a2 BAD")
        wrong = base64.b64encode(f"\0{USER}\0nope".encode())
        assert (await c3.command(b"AUTHENTICATE PLAIN " + wrong))[-1].startswith(
            b"T1 NO [AUTHENTICATIONFAILED]")
        other = base64.b64encode(f"boss@hayate.test\0{USER}\0{PASSWORD}".encode())
        assert (await c3.command(b"AUTHENTICATE PLAIN " + other))[-1].startswith(b"T2 NO")
        assert (await c3.command("AUTHENTICATE CRAM-MD5"))[-1].startswith(b"T3 NO")
        assert tagged_status(await c3.command(b"AUTHENTICATE PLAIN " + token)) == b"OK"


async def test_commands_in_the_wrong_state_are_bad(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.client()
        assert (await c.command("SELECT INBOX"))[-1] == b"T1 BAD Please log in first."
        assert (await c.command("LIST \"\" *"))[-1] == b"T2 BAD Please log in first."
        assert tagged_status(await c.command("NOOP")) == b"OK"
        assert tagged_status(await c.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"
        assert (await c.command(f"LOGIN {USER} {PASSWORD}"))[-1] == b"T5 BAD Already logged in."
        assert (await c.command("FETCH 1 FLAGS"))[-1] == b"T6 BAD No mailbox selected."
        assert (await c.command("CLOSE"))[-1] == b"T7 BAD No mailbox selected."


async def test_too_many_bad_commands_end_the_session(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_bad_commands=3) as h:
        c = await h.client()
        await c.send(b"a1 FROB\r\na2 FROB\r\na3 FROB\r\n")
        lines = [await c.line() for _ in range(4)]
        assert [line.split(b" ")[1] for line in lines[:3]] == [b"BAD"] * 3
        assert lines[3] == b"* BYE Too many invalid IMAP commands."
        assert await c.closed()
        assert h.server.stats.error_disconnects == 1
        # The server is fine: a new client logs in.
        assert tagged_status(await (await h.client()).command(
            f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_failed_logins_count_towards_the_limit(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_bad_commands=2, auth_failure_delay=0.01) as h:
        c = await h.client()
        await c.command(f"LOGIN {USER} x")
        await c.send(b"a LOGIN amy@hayate.test y\r\n")
        assert (await c.line()).startswith(b"a NO [AUTHENTICATIONFAILED]")
        assert (await c.line()).startswith(b"* BYE")
        assert await c.closed()


async def test_connections_per_user_are_limited(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_connections_per_user=2) as h:
        first = await h.login()
        await h.login()
        third = await h.client()
        reply = await third.command(f"LOGIN {USER} {PASSWORD}")
        assert reply[-1].startswith(b"T1 NO [LIMIT]")
        await first.command("LOGOUT")
        assert await first.closed()
        await asyncio.sleep(0.05)
        assert tagged_status(await third.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_idle_client_is_logged_out_after_command_timeout(tmp_path: Path) -> None:
    async with imap_server(tmp_path, command_timeout=0.3) as h:
        c = await h.login()
        started = time.monotonic()
        assert await c.line(timeout=3) == b"* BYE Disconnected for inactivity."
        assert await c.closed()
        assert 0.25 <= time.monotonic() - started < 2.5
        assert h.server.stats.timeouts == 1


async def test_logout_and_id_and_namespace(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.client()
        ident = await c.command('ID ("name" "test-client" "version" "1")')
        assert ident[0] == b'* ID ("name" "Hayate" "version" "0.1.0")'
        await c.command(f"LOGIN {USER} {PASSWORD}")
        assert (await c.command("NAMESPACE"))[0] == b'* NAMESPACE (("" "/")) NIL NIL'
        assert await c.command("LOGOUT") == [b"* BYE Logging out", b"T4 OK Logout completed."]
        assert await c.closed()
