"""Review follow-ups of the IMAP server, over real sockets to an in-process server on a real
SQLite store: keywords in ``* FLAGS`` (at SELECT and when a STORE or another session brings
a new one), SEARCH RECENT / OLD / NEW over a session's whole recent set, BINARY advertised
and APPEND with a literal8."""

from __future__ import annotations

from pathlib import Path

from tests.integration.imap.imap_harness import (
    PASSWORD,
    USER,
    Harness,
    RawClient,
    imap_server,
    message,
    tagged_status,
    tail,
)

SYSTEM = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def caps(line: bytes) -> set[bytes]:
    return set(line.split(b"CAPABILITY ", 1)[1].rstrip(b"]").split(b"]")[0].split())


async def selected(h: Harness, command: str = "SELECT INBOX") -> tuple[RawClient, list[bytes]]:
    c = await h.login()
    lines = await c.command(command)
    assert tagged_status(lines) == b"OK", lines
    return c, lines


async def test_select_lists_the_keywords_in_use(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("one"), flags=("\\Seen", "$Work"))
        await h.deliver(message("two"), flags=("Later", "$work"))  # same keyword, any case
        await h.deliver(message("three"))
        c, lines = await selected(h)
        assert lines[0] == b"* FLAGS (" + SYSTEM + b" $Work Later)"
        assert lines[1] == (b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $Work Later \\*)] "
                            b"Flags permitted.")
        _, examined = await selected(h, "EXAMINE INBOX")
        assert examined[0] == b"* FLAGS (" + SYSTEM + b" $Work Later)"
        assert examined[1] == b"* OK [PERMANENTFLAGS ()] Read-only mailbox."
        # A folder without keywords lists the system flags only.
        empty = await c.command("SELECT Sent")
        assert b"* FLAGS (" + SYSTEM + b")" in empty
        assert b"* OK [PERMANENTFLAGS (" + SYSTEM + b" \\*)] Flags permitted." in empty
        # The keywords are remembered per folder; a later SELECT sees what came since.
        await h.deliver(message("four"), flags=("Fresh",))
        again = await c.command("SELECT INBOX")
        assert b"* FLAGS (" + SYSTEM + b" $Work Fresh Later)" in again
        assert h.server.context.keywords.incremental == 1


async def test_a_new_keyword_is_announced_before_the_fetch(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("one"), flags=("$Work",))
        await h.deliver(message("two"))
        a, _ = await selected(h)
        b, _ = await selected(h)
        stored = await a.command("STORE 2 +FLAGS (Urgent)")
        assert stored[:3] == [
            b"* FLAGS (" + SYSTEM + b" $Work Urgent)",
            b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $Work Urgent \\*)] Flags permitted.",
            b"* 2 FETCH (FLAGS (Urgent \\Recent))",
        ]
        # A keyword already announced: no FLAGS again, even in another spelling.
        again = await a.command("STORE 1 +FLAGS (urgent $work)")
        assert not any(line.startswith(b"* FLAGS") for line in again), again
        # Silent stores announce it too (the client needs FLAGS to know the keyword).
        silent = await a.command("STORE 1 +FLAGS.SILENT (Todo)")
        assert silent[0] == b"* FLAGS (" + SYSTEM + b" $Work Todo Urgent)"
        assert tail(silent) == b"OK Store completed."
        # The other session learns of them through its poll, FLAGS first (in the spelling
        # it met first: message 1 has "urgent").
        polled = await b.command("NOOP")
        assert polled[0].lower() == (b"* FLAGS (" + SYSTEM + b" $Work Todo Urgent)").lower()
        assert polled[1].startswith(b"* OK [PERMANENTFLAGS (")
        assert polled[2:4] == [b"* 1 FETCH (UID 1 FLAGS ($Work Todo urgent))",
                               b"* 2 FETCH (UID 2 FLAGS (Urgent))"]
        assert not any(line.startswith(b"* FLAGS") for line in (await b.command("NOOP")))
        # A delivery carrying a new keyword: FLAGS comes with the EXISTS.
        await h.deliver(message("three"), flags=("Bills",))
        arrived = await b.command("NOOP")
        assert arrived[0].lower() == (b"* FLAGS (" + SYSTEM + b" $Work Bills Todo Urgent)"
                                      ).lower()
        assert b"* 3 EXISTS" in arrived


async def test_search_recent_uses_every_recent_range(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("one"), flags=("\\Seen",))
        await h.deliver(message("two"))
        a, select_a = await selected(h)  # UIDs 1:2 become recent to a
        assert b"* 2 RECENT" in select_a
        await h.deliver(message("three"))
        b, select_b = await selected(h)  # UID 3 is recent to b only
        assert b"* 1 RECENT" in select_b
        await h.deliver(message("four"))
        polled = await a.command("NOOP")  # UID 4 goes to a: a's recent set is 1:2,4
        assert polled[:2] == [b"* 4 EXISTS", b"* 3 RECENT"]
        assert (await a.command("SEARCH RECENT"))[0] == b"* SEARCH 1 2 4"
        assert (await a.command("SEARCH OLD"))[0] == b"* SEARCH 3"
        assert (await a.command("SEARCH NEW"))[0] == b"* SEARCH 2 4"
        assert (await a.command("UID SEARCH NOT RECENT"))[0] == b"* SEARCH 3"
        esearch = await a.command("SEARCH RETURN (COUNT) RECENT")
        assert esearch[0].endswith(b"COUNT 3")
        assert (await a.command("SORT (ARRIVAL) UTF-8 RECENT"))[0] == b"* SORT 1 2 4"

        assert b"* 4 EXISTS" in await b.command("NOOP")
        assert (await b.command("SEARCH RECENT"))[0] == b"* SEARCH 3"
        assert (await b.command("SEARCH OLD"))[0] == b"* SEARCH 1 2 4"
        assert (await b.command("FETCH 3:4 FLAGS"))[:2] == [
            b"* 3 FETCH (FLAGS (\\Recent))", b"* 4 FETCH (FLAGS ())"]


async def test_binary_is_advertised_and_append_takes_a_literal8(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.client()
        assert b"BINARY" not in caps(c.greeting)
        login = await c.command(f"LOGIN {USER} {PASSWORD}")
        assert b"BINARY" in caps(login[-1])
        assert b"BINARY" in caps((await c.command("CAPABILITY"))[0])

        payload = b"\x00\x01binary\x00\xff"
        data = (b"From: a@example.com\r\nSubject: raw\r\nContent-Transfer-Encoding: binary\r\n"
                b"\r\n" + payload + b"\r\n")
        await c.send(b"A1 APPEND INBOX (\\Seen) ~{%d}\r\n" % len(data))
        assert (await c.line()).startswith(b"+ ")
        await c.send(data + b"\r\n")
        appended = await c.until_tagged("A1")
        assert appended[-1].startswith(b"A1 OK [APPENDUID ")
        await c.send(b"A2 APPEND INBOX ~{%d+}\r\n" % len(data) + data + b"\r\n")  # LITERAL+
        assert (await c.until_tagged("A2"))[-1].startswith(b"A2 OK [APPENDUID ")

        await c.command("SELECT INBOX")
        fetched = await c.command("FETCH 1:2 (BINARY.SIZE[] BINARY.PEEK[])")
        for seq, line in ((1, fetched[0]), (2, fetched[1])):
            assert line == (b"* %d FETCH (BINARY.SIZE[] %d BINARY[] ~{%d}\r\n" % (
                seq, len(data), len(data)) + data + b")")
        assert (await c.command("FETCH 2 FLAGS"))[0] == b"* 2 FETCH (FLAGS (\\Recent))"

        # A literal8 where the grammar allows only a string is refused; the session goes on.
        refused = await c.command(b"CREATE ~{3+}\r\nabc")
        assert tagged_status(refused) == b"BAD"
        assert tagged_status(await c.command("NOOP")) == b"OK"
