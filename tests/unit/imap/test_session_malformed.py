"""Malformed input over a raw socket: each gets BAD or NO, the session goes on, the server
stays healthy (no internal errors) and keeps serving new clients."""

from __future__ import annotations

import random
from pathlib import Path

from tests.integration.imap.imap_harness import (
    Harness,
    RawClient,
    imap_server,
    tagged_status,
    tail,
)


async def still_healthy(h: Harness, c: RawClient) -> None:
    assert tagged_status(await c.command("NOOP")) == b"OK"
    fresh = await h.login()
    assert tagged_status(await fresh.command("SELECT INBOX")) == b"OK"
    assert h.server.stats.internal_errors == 0


async def test_wrong_tags(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_bad_commands=100) as h:
        c = await h.login()
        for line in (b"* NOOP", b"+ NOOP", b" NOOP", b"a{b NOOP", b'"x" NOOP', b"(a) NOOP",
                     b"NOOP"):
            await c.send(line + b"\r\n")
            reply = await c.line()
            assert b" BAD " in reply, (line, reply)
        await still_healthy(h, c)


async def test_unbalanced_parentheses_and_bad_arguments(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_bad_commands=100) as h:
        c = await h.login()
        await c.command("SELECT INBOX")
        for text in ("FETCH 1 (FLAGS", "FETCH 1 FLAGS)", "SEARCH (OR SEEN", "SEARCH SEEN)",
                     "STORE 1 +FLAGS (\\Seen", "FETCH 1:x FLAGS", "FETCH 0 FLAGS",
                     "LIST \"\"", "SELECT", "APPEND INBOX (\\Seen", "UID", "UID FROB 1",
                     "SEARCH SINCE 32-Foo-2020", "FETCH * (BODY[1.HEADER.FIELDS ()])",
                     "CREATE \"unterminated", "FROBNICATE"):
            reply = await c.command(text)
            assert tagged_status(reply) == b"BAD", (text, reply)
        await still_healthy(h, c)


async def test_invalid_utf7_mailbox_names(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_bad_commands=100) as h:
        c = await h.login()
        for text in ('SELECT "&Jjo"', 'CREATE "&AGE-"', 'LIST "" "&-&"', 'STATUS "&ZeVnLIqe" '
                     "(MESSAGES)", 'RENAME INBOX "&"', 'CREATE "caf\xc3\xa9"'):
            reply = await c.command(text.encode("latin-1"))
            assert tagged_status(reply) in (b"BAD", b"NO"), (text, reply)
        await still_healthy(h, c)


async def test_huge_literals_are_refused(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_literal=64 * 1024, max_bad_commands=100) as h:
        c = await h.login()
        # A synchronizing literal over the limit: refused before the client sends it.
        await c.send(b"a1 APPEND INBOX {999999999}\r\n")
        reply = await c.line()
        assert reply.startswith(b"a1 NO [TOOBIG]") or reply.startswith(b"a1 BAD [TOOBIG]")
        # A LITERAL+ one: the bytes arrive anyway and are thrown away.
        await c.send(b"a2 APPEND INBOX {200000+}\r\n" + b"x" * 200000 + b"\r\n")
        reply = await c.line()
        assert b"[TOOBIG]" in reply and reply.startswith(b"a2 ")
        # A login with a huge literal password.
        await c.send(b"a3 LOGIN amy {99999999}\r\n")
        assert b"[TOOBIG]" in await c.line()
        await still_healthy(h, c)
        status = await c.command("STATUS INBOX (MESSAGES)")
        assert status[0] == b"* STATUS INBOX (MESSAGES 0)"


async def test_line_too_long_and_binary_garbage(tmp_path: Path) -> None:
    async with imap_server(tmp_path, max_line_length=4096, max_bad_commands=100) as h:
        c = await h.login()
        await c.send(b"a1 NOOP " + b"x" * 50_000 + b"\r\n")
        assert (await c.line()).startswith(b"a1 BAD")
        await c.send(b"\x00\x01\x02\xff\xfe garbage\r\n")
        assert b"BAD" in await c.line()
        await c.send(b"a2 SELECT \"\x00\"\r\n")
        assert (await c.line()).startswith(b"a2 BAD")
        await still_healthy(h, c)


async def test_random_garbage_never_breaks_the_server(tmp_path: Path) -> None:
    rng = random.Random(4)
    words = [b"FETCH", b"UID", b"(", b")", b"[", b"]", b"{5}", b"{3+}", b"*", b"1:*", b"\"",
             b"BODY[", b"\\Seen", b"NIL", b"%", b"&", b"&-", b"~", b"\x00", b"\xff",
             b"SEARCH", b"STORE", b"+FLAGS", b"INBOX", b"APPEND", b"{0}", b"OR", b"NOT"]
    async with imap_server(tmp_path, max_bad_commands=10_000) as h:
        c = await h.login()
        await c.command("SELECT INBOX")
        for n in range(150):
            line = b" ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
            await c.send(b"g%d %s\r\n" % (n, line))
        # Whatever state the garbage left (a literal may be pending), a few empty lines
        # and a NOOP get through.
        await c.send(b"\r\n" * 8 + b"zz NOOP\r\n")
        lines = await c.until_tagged("zz", timeout=10)
        assert tail(lines).startswith(b"OK")
        await still_healthy(h, c)
