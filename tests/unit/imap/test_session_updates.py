"""Several sessions on one mailbox: untagged EXISTS / EXPUNGE / FETCH FLAGS updates, the
RFC 3501 §7.4.1 rule (no EXPUNGE after FETCH, STORE, SEARCH), QRESYNC (VANISHED), IDLE
(wakes on changes, DONE, BAD, timeout) and pipelining."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.imap.imap_harness import (
    Harness,
    RawClient,
    imap_server,
    message,
    tagged_status,
    tail,
)


async def selected(h: Harness) -> RawClient:
    c = await h.login()
    assert tagged_status(await c.command("SELECT INBOX")) == b"OK"
    return c


async def test_two_sessions_see_each_others_changes(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(3):
            await h.deliver(message(f"m{n}"))
        a = await selected(h)
        b = await selected(h)
        await b.command("STORE 2 +FLAGS (\\Flagged)")
        seen = await a.command("NOOP")
        assert seen[:-1] == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"]
        assert (await a.command("NOOP"))[:-1] == []  # reported once
        await b.command("STORE 3 +FLAGS.SILENT (\\Deleted)")
        await b.command("EXPUNGE")
        await h.deliver(message("m3"))
        update = await a.command("NOOP")
        assert update[:-1] == [
            b"* 3 EXPUNGE", b"* 3 EXISTS", b"* 3 RECENT",
        ]
        assert (await a.command("FETCH 3 (UID)"))[0] == b"* 3 FETCH (UID 4)"
        # b's own changes were reported to b by its commands, not again by the poll.
        assert (await b.command("NOOP"))[:-1] == [b"* 3 EXISTS", b"* 0 RECENT"]


async def test_no_expunge_during_fetch_store_search(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(3):
            await h.deliver(message(f"m{n}"))
        a = await selected(h)
        b = await selected(h)
        await b.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        await b.command("EXPUNGE")
        fetched = await a.command("FETCH 1:3 (UID)")
        assert not any(line.endswith(b" EXPUNGE") for line in fetched)
        assert fetched[:-1] == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"]
        assert tail(fetched).startswith(b"NO [EXPUNGEISSUED]")
        stored = await a.command("STORE 3 +FLAGS (\\Seen)")
        assert not any(line.endswith(b" EXPUNGE") for line in stored)
        assert stored[0].startswith(b"* 3 FETCH")  # message 3 keeps its number meanwhile
        searched = await a.command("SEARCH ALL")
        assert searched[0] == b"* SEARCH 1 3"
        assert not any(line.endswith(b" EXPUNGE") for line in searched)
        assert (await a.command("NOOP"))[:-1] == [b"* 2 EXPUNGE"]
        assert (await a.command("FETCH 2 (UID)"))[0] == b"* 2 FETCH (UID 3)"


async def test_uid_commands_may_send_expunge(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(2):
            await h.deliver(message(f"m{n}"))
        a = await selected(h)
        b = await selected(h)
        await b.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        await b.command("EXPUNGE")
        fetched = await a.command("UID FETCH 1:* (FLAGS)")
        assert b"* 1 EXPUNGE" in fetched
        assert fetched.index(b"* 1 EXPUNGE") > 0  # after the FETCH data


async def test_qresync_select_and_vanished(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(4):
            await h.deliver(message(f"m{n}"))
        a = await h.login()
        assert (await a.command("ENABLE QRESYNC"))[0] == b"* ENABLED QRESYNC"
        first = await a.command("SELECT INBOX")
        validity = next(line for line in first if b"UIDVALIDITY" in line).split()[3][:-1]
        highest = next(line for line in first if b"HIGHESTMODSEQ" in line).split()[3][:-1]
        await a.command("UNSELECT")
        b = await selected(h)
        await b.command("STORE 1 +FLAGS (\\Answered)")
        await b.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        await b.command("EXPUNGE")
        resync = await a.command(
            f"SELECT INBOX (QRESYNC ({validity.decode()} {highest.decode()}))")
        assert b"* VANISHED (EARLIER) 2" in resync
        changed = [line for line in resync if b"FETCH" in line]
        assert len(changed) == 1 and changed[0].startswith(b"* 1 FETCH (UID 1 FLAGS (")
        assert b"MODSEQ (" in changed[0]
        await b.command("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        await b.command("EXPUNGE")
        assert (await a.command("NOOP"))[:-1] == [b"* VANISHED 3"]
        since = await a.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest.decode()} "
                                f"VANISHED)")
        assert since[0] == b"* VANISHED (EARLIER) 2:3"
        # Without QRESYNC enabled, the QRESYNC parameter is refused.
        c = await h.login()
        assert tagged_status(await c.command(
            f"SELECT INBOX (QRESYNC ({validity.decode()} 1))")) == b"BAD"


async def test_idle_reports_a_delivery_at_once(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("first"))
        a = await selected(h)
        await a.send(b"i1 IDLE\r\n")
        assert await a.line() == b"+ idling"
        started = time.monotonic()
        await h.deliver(message("second"))
        assert await a.line(timeout=2) == b"* 2 EXISTS"
        assert await a.line() == b"* 2 RECENT"
        assert time.monotonic() - started < 1.0
        b = await selected(h)
        await b.command("STORE 1 +FLAGS (\\Flagged)")
        assert await a.line(timeout=2) == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
        await a.send(b"DONE\r\n")
        assert await a.line() == b"i1 OK Idle completed."
        assert tagged_status(await a.command("NOOP")) == b"OK"


async def test_idle_ends_with_bad_on_other_input_and_works_unselected(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        a = await h.login()
        await a.send(b"i1 IDLE\r\n")
        assert await a.line() == b"+ idling"
        await a.send(b"i2 NOOP\r\n")
        assert (await a.line()).startswith(b"i1 BAD")
        await a.send(b"i3 IDLE\r\n")
        assert await a.line() == b"+ idling"
        await a.send(b"done\r\n")
        assert await a.line() == b"i3 OK Idle completed."


async def test_idle_timeout_logs_out(tmp_path: Path) -> None:
    async with imap_server(tmp_path, idle_timeout=0.3) as h:
        a = await selected(h)
        await a.send(b"i1 IDLE\r\n")
        assert await a.line() == b"+ idling"
        assert await a.line(timeout=3) == b"* BYE Disconnected for inactivity."
        assert await a.closed()


async def test_pipelined_commands_answer_in_order(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(5):
            await h.deliver(message(f"m{n}"))
        a = await selected(h)
        await a.send(b"".join(b"p%d UID FETCH %d (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
                              % (n, n) for n in range(1, 6)) + b"p6 NOOP\r\n")
        lines = await a.until_tagged("p6")
        tags = [line.split()[0] for line in lines if not line.startswith(b"*")]
        assert tags == [b"p1", b"p2", b"p3", b"p4", b"p5", b"p6"]
        assert b"Subject: m4" in lines[8]


async def test_selected_folder_deleted_by_another_session(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        a = await h.login()
        await a.command("CREATE Temp")
        await a.command("SELECT Temp")
        b = await h.login()
        assert tagged_status(await b.command("DELETE Temp")) == b"OK"
        await a.send(b"x NOOP\r\n")
        assert await a.line() == b"* BYE Selected mailbox was deleted, have to disconnect."
        assert await a.closed()
        # The server keeps serving everyone else.
        assert tagged_status(await b.command("SELECT INBOX")) == b"OK"
        assert h.server.stats.internal_errors == 0
