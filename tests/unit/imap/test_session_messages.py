"""IMAP message commands through a real socket: FETCH (items, implicit \\Seen, CHANGEDSINCE),
STORE (+/-/replace, SILENT, UNCHANGEDSINCE), COPY and MOVE (COPYUID, TRYCREATE), EXPUNGE and
UID EXPUNGE, SEARCH/ESEARCH, SORT, CLOSE and UNSELECT."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.imap.imap_harness import (
    Harness,
    RawClient,
    imap_server,
    message,
    tagged_status,
    tail,
)


async def three(h: Harness) -> RawClient:
    await h.deliver(message("alpha", sender="carol@example.com"))
    await h.deliver(message("beta", "needle in here"), flags=("\\Seen",))
    await h.deliver(message("gamma", sender="alice@example.com"), flags=("\\Flagged",))
    c = await h.login()
    assert tagged_status(await c.command("SELECT INBOX")) == b"OK"
    return c


async def test_fetch_items(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        lines = await c.command("FETCH 1:* (UID FLAGS RFC822.SIZE)")
        assert lines[0].startswith(b"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE ")
        assert lines[1].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) RFC822.SIZE ")
        assert lines[2].startswith(b"* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent)")
        assert lines[3] == b"T3 OK Fetch completed."
        env = await c.command("FETCH 2 (ENVELOPE BODYSTRUCTURE)")
        assert b'ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" "beta" ' in env[0]
        assert b'BODYSTRUCTURE ("text" "plain"' in env[0]
        part = await c.command("UID FETCH 2 (BODY.PEEK[TEXT]<0.6>)")
        assert part[0] == b"* 2 FETCH (UID 2 BODY[TEXT]<0> {6}\r\nneedle)"
        fast = await c.command("FETCH 3 FAST")
        assert b"INTERNALDATE " in fast[0] and b"RFC822.SIZE " in fast[0]
        bad = await c.command("FETCH 9 FLAGS")
        assert tail(bad).startswith(b"BAD")
        assert tagged_status(await c.command("UID FETCH 9:20 FLAGS")) == b"OK"
        star = await c.command("UID FETCH 9:* (FLAGS)")  # includes the last message
        assert star[0].startswith(b"* 3 FETCH (UID 3 ")


async def test_body_fetch_sets_seen_and_peek_does_not(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        peek = await c.command("FETCH 1 (BODY.PEEK[])")
        assert b"FLAGS" not in peek[0]
        body = await c.command("FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
        assert body[0] == (b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\n"
                           b"Subject: alpha\r\n\r\n FLAGS (\\Seen \\Recent))")
        again = await c.command("FETCH 1 (RFC822)")
        assert b"FLAGS" not in again[0]  # already \Seen: nothing changed
        other = await h.login()
        await other.command("EXAMINE INBOX")
        viewed = await other.command("FETCH 1 (BODY[] FLAGS)")
        assert viewed[0].endswith(b"FLAGS (\\Seen))")
        # EXAMINE never sets \Seen.
        await other.command("FETCH 3 (BODY[])")
        assert (await other.command("FETCH 3 FLAGS"))[0] == b"* 3 FETCH (FLAGS (\\Flagged))"


async def test_store_variants(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        add = await c.command("STORE 1 +FLAGS (\\Answered $Work)")
        assert add[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"
        assert add[2] == b"* 1 FETCH (FLAGS (\\Answered $Work \\Recent))"
        remove = await c.command("STORE 1 -FLAGS ($Work)")
        assert remove[0] == b"* 1 FETCH (FLAGS (\\Answered \\Recent))"
        replace = await c.command("UID STORE 1:2 FLAGS (\\Draft)")
        assert replace[:2] == [b"* 1 FETCH (UID 1 FLAGS (\\Draft \\Recent))",
                               b"* 2 FETCH (UID 2 FLAGS (\\Draft \\Recent))"]
        silent = await c.command("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        assert len(silent) == 1 and tail(silent) == b"OK Store completed."
        same = await c.command("STORE 3 +FLAGS (\\Deleted)")  # already so: still reported
        assert same[0] == b"* 3 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))"
        assert tail(await c.command("STORE 7 +FLAGS (\\Seen)")).startswith(b"BAD")


async def test_condstore_store_and_fetch_changedsince(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        enabled = await c.command("ENABLE CONDSTORE")
        assert enabled[0] == b"* ENABLED CONDSTORE"
        lines = await c.command("FETCH 1:3 (MODSEQ)")
        modseqs = [int(line.split(b"MODSEQ (")[1].split(b")")[0]) for line in lines[:3]]
        stored = await c.command(f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) +FLAGS (\\Seen)")
        assert b"MODSEQ (" in stored[0] and tagged_status(stored) == b"OK"
        # Message 1 changed after modseqs[1]; message 2 did not.
        stale = await c.command(f"STORE 1,2 (UNCHANGEDSINCE {modseqs[1]}) +FLAGS ($X)")
        assert tail(stale).startswith(b"OK [MODIFIED 1]")
        assert [line[:12] for line in stale[:-1]] == [
            b"* FLAGS (\\An", b"* OK [PERMAN", b"* 2 FETCH (F"]  # $X is a new keyword
        since = await c.command(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {max(modseqs)})")
        changed = [line for line in since if line.startswith(b"* ")]
        assert [line.split(b" ")[1] for line in changed] == [b"1", b"2"]
        assert all(b"MODSEQ (" in line for line in changed)


async def test_copy_and_move_with_uidplus(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        copied = await c.command("COPY 1:2 Archive")
        assert tail(copied).startswith(b"OK [COPYUID ")
        code = tail(copied).split(b"[COPYUID ")[1].split(b"]")[0].split()
        assert code[1:] == [b"1:2", b"1:2"]
        moved = await c.command("UID MOVE 2:3 Trash")
        assert moved[0].startswith(b"* OK [COPYUID ")
        assert moved[0].endswith(b" 2:3 1:2] Moved UIDs.")
        assert moved[1:3] == [b"* 2 EXPUNGE", b"* 2 EXPUNGE"]
        assert moved[-1].endswith(b"OK Move completed.")
        assert tail(await c.command("COPY 1 Nowhere")).startswith(b"NO [TRYCREATE]")
        assert tail(await c.command("MOVE 1 Nowhere")).startswith(b"NO [TRYCREATE]")
        status = await c.command("STATUS Trash (MESSAGES)")
        assert status[0] == b"* STATUS Trash (MESSAGES 2)"
        assert (await c.command("FETCH 1:* (UID)"))[:-1] == [b"* 1 FETCH (UID 1)"]


async def test_expunge_uid_expunge_close_unselect(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        await c.command("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        partial = await c.command("UID EXPUNGE 2")
        assert partial[:-1] == [b"* 2 EXPUNGE"]
        everything = await c.command("EXPUNGE")
        assert everything[:-1] == [b"* 1 EXPUNGE", b"* 1 EXPUNGE"]
        await h.deliver(message("delta"))
        await c.command("NOOP")
        await c.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        closed = await c.command("CLOSE")
        assert len(closed) == 1 and tail(closed) == b"OK Close completed."  # silent expunge
        assert tail(await c.command("FETCH 1 FLAGS")) == b"BAD No mailbox selected."
        status = await c.command("STATUS INBOX (MESSAGES UIDNEXT)")
        assert status[0] == b"* STATUS INBOX (MESSAGES 0 UIDNEXT 5)"
        await h.deliver(message("epsilon"))
        await c.command("SELECT INBOX")
        await c.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert tagged_status(await c.command("UNSELECT")) == b"OK"
        assert (await c.command("STATUS INBOX (MESSAGES)"))[0] == b"* STATUS INBOX (MESSAGES 1)"


async def test_uids_are_never_reused(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        await c.command("STORE 3 +FLAGS.SILENT (\\Deleted)")
        await c.command("EXPUNGE")
        await h.deliver(message("after"))
        assert (await c.command("NOOP"))[:-1] == [b"* 3 EXISTS", b"* 3 RECENT"]
        lines = await c.command("UID FETCH 1:* (UID)")
        assert [line for line in lines if line.startswith(b"* ") and b"FETCH" in line][-1] \
            == b"* 3 FETCH (UID 4)"


async def test_search_and_esearch(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        assert (await c.command("SEARCH ALL"))[0] == b"* SEARCH 1 2 3"
        assert (await c.command("SEARCH UNSEEN"))[0] == b"* SEARCH 1 3"
        assert (await c.command("SEARCH BODY needle"))[0] == b"* SEARCH 2"
        assert (await c.command("UID SEARCH FROM alice"))[0] == b"* SEARCH 3"
        assert (await c.command("SEARCH OR FLAGGED SEEN NOT 2"))[0] == b"* SEARCH 3"
        assert (await c.command('SEARCH CHARSET UTF-8 SUBJECT "gam"'))[0] == b"* SEARCH 3"
        refused = await c.command("SEARCH CHARSET X-UNKNOWN TEXT x")
        assert tail(refused).startswith(b"NO [BADCHARSET")
        esearch = await c.command("SEARCH RETURN (MIN MAX COUNT) UNDELETED")
        tag = esearch[-1].split()[0].decode()
        assert esearch[0] == f'* ESEARCH (TAG "{tag}") MIN 1 MAX 3 COUNT 3'.encode()
        uid_all = await c.command("UID SEARCH RETURN () 2:3")
        tag = uid_all[-1].split()[0].decode()
        assert uid_all[0] == f'* ESEARCH (TAG "{tag}") UID ALL 2:3'.encode()
        assert tail(await c.command("SEARCH FROBNICATE")).startswith(b"BAD")


async def test_sort(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await three(h)
        assert (await c.command("SORT (SUBJECT) UTF-8 ALL"))[0] == b"* SORT 1 2 3"
        assert (await c.command("SORT (REVERSE SUBJECT) UTF-8 ALL"))[0] == b"* SORT 3 2 1"
        assert (await c.command("UID SORT (FROM) UTF-8 ALL"))[0] == b"* SORT 3 2 1"
        assert (await c.command("SORT (SIZE) UTF-8 UNSEEN"))[0] == b"* SORT 1 3"


async def test_large_fetch_streams_everything(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        body = "line of text\r\n" * 4000  # ~56 KB each
        for n in range(40):
            await h.deliver(message(f"big {n}", body))
        c = await h.login()
        await c.command("SELECT INBOX")
        lines = await c.command("FETCH 1:* (BODY.PEEK[])", timeout=20)
        assert len(lines) == 41 and tagged_status(lines) == b"OK"
        assert all(len(line) > 56_000 for line in lines[:-1])


async def test_a_client_that_stops_reading_is_dropped_and_the_server_goes_on(
    tmp_path: Path,
) -> None:
    async with imap_server(tmp_path, command_timeout=1.0) as h:
        body = "y" * 60_000 + "\r\n"
        for n in range(120):  # ~7 MB of FETCH output, far above the socket buffers
            await h.deliver(message(f"big {n}", body))
        c = await h.login()
        await c.command("SELECT INBOX")
        c.writer.transport.pause_reading()  # the client reads nothing more
        await c.send(b"f1 FETCH 1:* (BODY.PEEK[])\r\n")
        other = await h.login()
        for _ in range(40):
            if h.server.stats.timeouts:
                break
            await other.command("NOOP")
            await asyncio.sleep(0.1)
        assert h.server.stats.timeouts == 1
        assert tagged_status(await other.command("SELECT INBOX")) == b"OK"
        assert h.server.stats.internal_errors == 0


async def test_a_client_leaving_mid_fetch_does_not_hurt(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        for n in range(60):
            await h.deliver(message(f"big {n}", "z" * 60_000))
        c = await h.login()
        await c.command("SELECT INBOX")
        await c.send(b"f1 FETCH 1:* (BODY.PEEK[])\r\n")
        await c.line()
        c.writer.transport.abort()
        await asyncio.sleep(0.2)
        other = await h.login()
        assert tagged_status(await other.command("SELECT INBOX")) == b"OK"
        assert h.server.stats.internal_errors == 0
        assert h.server.stats.active == 1
