"""IMAP limits against abuse (review of issue 4): small literals and a login deadline before
login, a connection cap, LIST patterns that cannot blow up, password guessing across
connections, COPY when the selected folder was renamed elsewhere — over real sockets to an
in-process server on a real SQLite store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.integration.imap.imap_harness import (
    PASSWORD,
    USER,
    imap_server,
    message,
    tagged_status,
    tail,
)

from hayate.imap.server import PRE_LOGIN_LITERAL


async def test_big_literal_before_login_is_refused_and_allowed_after(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_literal=1 << 20) as h:
        c = await h.client()
        await c.send(b"A1 LOGIN {%d}\r\n" % (PRE_LOGIN_LITERAL + 1))
        refused = await c.line()
        assert refused.startswith(b"A1 NO [TOOBIG]"), refused
        # LITERAL+: the server cannot say no before the bytes come; it drops them unheld.
        await c.send(b"A2 LOGIN {200000+}\r\n" + b"x" * 200000 + b" pw\r\n")
        assert (await c.line()).startswith(b"A2 NO [TOOBIG]")
        # A literal of a normal size still works for LOGIN, and the session goes on.
        await c.send(b"A3 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
                     % (len(USER), USER.encode(), len(PASSWORD), PASSWORD.encode()))
        assert tagged_status(await c.until_tagged("A3")) == b"OK"
        body = message("big", "y" * 300_000)
        await c.send(b"A4 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        assert tagged_status(await c.until_tagged("A4")) == b"OK"


async def test_unauthenticated_client_is_disconnected_after_the_login_timeout(
        tmp_path: Path) -> None:
    async with imap_server(tmp_path, login_timeout=0.4) as h:
        idle = await h.client()
        logged_in = await h.login()
        started = time.monotonic()
        await idle.send(b"A1 CAPABILITY\r\n")  # activity does not extend the deadline
        await idle.until_tagged("A1")
        assert (await idle.line(3.0)).startswith(b"* BYE")
        assert await idle.closed(3.0)
        assert time.monotonic() - started < 2.0
        await asyncio.sleep(0.2)
        assert tagged_status(await logged_in.command("NOOP")) == b"OK"


async def test_connections_over_the_cap_get_bye(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_connections=2) as h:
        first = await h.client()
        await h.client()
        over = await h.client()
        assert over.greeting.startswith(b"* BYE Too many connections"), over.greeting
        assert await over.closed(3.0)
        assert h.server.stats.refused == 1
        await first.close()
        for _ in range(100):  # the server sees the close
            if h.server.stats.active < 2:
                break
            await asyncio.sleep(0.02)
        again = await h.client()
        assert again.greeting.startswith(b"* OK")
        assert tagged_status(await again.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_list_pattern_with_many_stars_does_not_stall(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        name = "a" * 200
        assert tagged_status(await c.command(f'CREATE "{name}"')) == b"OK"
        other = await h.login()
        started = time.monotonic()
        await c.send(b'X1 LIST "" "*a*a*a*a*a*a*a*a*a*b"\r\n')
        reply = await other.command("NOOP", timeout=2.0)
        assert tagged_status(reply) == b"OK"
        listed = await c.until_tagged("X1", timeout=2.0)
        assert listed == [b"X1 OK List completed."]
        assert time.monotonic() - started < 1.0
        hit = await c.command('LIST "" "*a*a*a*a*a*a*a*a*a*a"')
        assert hit[0].endswith(name.encode()), hit
        too_long = await c.command('LIST "" "' + "*a" * 600 + '"')
        assert tagged_status(too_long) == b"BAD"
        assert tagged_status(await c.command("NOOP")) == b"OK"


async def test_logins_over_the_address_limit_are_refused_unchecked(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_auth_failures_per_address=3,
                           auth_failure_window=60.0) as h:
        for _ in range(3):
            c = await h.client()
            assert tagged_status(await c.command(f"LOGIN {USER} wrong")) == b"NO"
        c = await h.client()
        refused = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert tail(refused) == b"NO [AUTHENTICATIONFAILED] Authentication failed."
        assert h.server.stats.auth_refused == 1
        h.clock.advance(61.0)  # the window passes
        assert tagged_status(await c.command(f"LOGIN {USER} {PASSWORD}")) == b"OK"


async def test_success_resets_the_address_count(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_auth_failures_per_address=3) as h:
        c = await h.client()
        for _ in range(2):
            assert tagged_status(await c.command(f"LOGIN {USER} wrong")) == b"NO"
        await h.login()
        c = await h.client()
        for _ in range(2):
            assert tagged_status(await c.command(f"LOGIN {USER} wrong")) == b"NO"
        await h.login()
        assert h.server.stats.auth_refused == 0


async def test_parallel_guesses_cannot_pass_the_limit(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_auth_failures_per_address=3,
                           auth_failure_delay=0.2) as h:
        clients = [await h.client() for _ in range(10)]
        replies = await asyncio.gather(
            *(c.command(f"LOGIN {USER} guess{i}") for i, c in enumerate(clients)))
        assert all(tagged_status(r) == b"NO" for r in replies)
        assert h.server.stats.auth_refused == 7


async def test_logins_over_the_ip_limit_are_refused_for_any_address(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_auth_failures_per_ip=4) as h:
        c = await h.client()
        for i in range(4):
            assert tagged_status(await c.command(f"LOGIN nobody{i}@hayate.test x")) == b"NO"
        c = await h.client()
        assert b"[AUTHENTICATIONFAILED]" in tail(await c.command(f"LOGIN {USER} {PASSWORD}"))


async def test_copy_after_another_session_renamed_the_selected_folder(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        assert tagged_status(await c.command("CREATE Work")) == b"OK"
        await h.deliver(message("one"), "Work")
        assert tagged_status(await c.command("SELECT Work")) == b"OK"
        other = await h.login()
        assert tagged_status(await other.command("RENAME Work Projects")) == b"OK"
        reply = await c.command("COPY 1 Missing")
        assert tail(reply).startswith(b"NO [TRYCREATE]"), reply
        assert not any(line.startswith(b"* BYE") for line in reply)
        created = await c.command("CREATE Kept")
        assert tagged_status(created) == b"OK", created
        assert tagged_status(await c.command("COPY 1 Kept")) == b"OK"
