"""IMAP folder commands through a real socket: LIST (hierarchy, wildcards, special use,
LIST-EXTENDED, LIST-STATUS), LSUB, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS, SELECT and
EXAMINE, APPEND and QUOTA."""

from __future__ import annotations

from pathlib import Path

from tests.integration.imap.imap_harness import imap_server, message, tagged_status, tail


def names(lines: list[bytes]) -> list[bytes]:
    """The mailbox names of LIST/LSUB lines."""
    return [line.rsplit(b'"/" ', 1)[1] for line in lines if line.startswith((b"* LIST",
                                                                            b"* LSUB"))]


async def test_list_shows_default_folders_with_special_use(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        lines = await c.command('LIST "" "*"')
        assert lines[:-1] == [
            b'* LIST (\\HasNoChildren) "/" INBOX',
            b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
            b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
            b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent',
            b'* LIST (\\HasNoChildren \\Trash) "/" Trash',
        ]
        root = await c.command('LIST "" ""')
        assert root[0] == b'* LIST (\\Noselect) "/" ""'
        special = await c.command('LIST (SPECIAL-USE) "" "*"')
        assert b"INBOX" not in names(special) and len(names(special)) == 5
        returned = await c.command('LIST "" "*" RETURN (SPECIAL-USE)')
        assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent' in returned


async def test_hierarchy_wildcards_and_children(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        assert tagged_status(await c.command("CREATE Work/2024/Q1")) == b"OK"
        assert tagged_status(await c.command('CREATE "Projects/"')) == b"OK"
        everything = await c.command('LIST "" "*"')
        assert b'* LIST (\\HasChildren) "/" Work' in everything
        assert b'* LIST (\\HasChildren) "/" Work/2024' in everything
        assert b'* LIST (\\HasNoChildren) "/" Work/2024/Q1' in everything
        assert b'* LIST (\\HasNoChildren) "/" Projects' in everything
        top = names(await c.command('LIST "" "%"'))
        assert b"Work" in top and b"Work/2024" not in top
        assert names(await c.command('LIST "" "Work/%"')) == [b"Work/2024"]
        assert names(await c.command('LIST "Work/" "*"')) == [b"Work/2024", b"Work/2024/Q1"]
        assert names(await c.command('LIST "" "inbox"')) == [b"INBOX"]
        assert names(await c.command('LIST "" "nothing*"')) == []


async def test_unicode_names_travel_as_modified_utf7(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        assert tagged_status(await c.command('CREATE "Entw&APw-rfe"')) == b"OK"
        assert b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe' in await c.command('LIST "" "*"')
        folders = [f.name for f in await h.mailboxes().folders()]
        assert "Entwürfe" in folders
        assert tail(await c.command('CREATE "bad&name"')).startswith(b"BAD")


async def test_create_delete_rename_errors(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        assert tail(await c.command("CREATE INBOX")).startswith(b"NO [ALREADYEXISTS]")
        assert tagged_status(await c.command("CREATE Lists")) == b"OK"
        assert tail(await c.command("CREATE Lists")).startswith(b"NO [ALREADYEXISTS]")
        assert tail(await c.command("DELETE INBOX")).startswith(b"NO")
        assert tail(await c.command("DELETE Nowhere")).startswith(b"NO [NONEXISTENT]")
        assert tagged_status(await c.command("CREATE Lists/python")) == b"OK"
        assert tagged_status(await c.command("DELETE Lists")) == b"NO"  # has children
        assert tagged_status(await c.command("RENAME Lists Groups")) == b"OK"
        listed = names(await c.command('LIST "" "Groups*"'))
        assert listed == [b"Groups", b"Groups/python"]
        assert tail(await c.command("RENAME Nowhere Else")).startswith(b"NO [NONEXISTENT]")
        assert tail(await c.command("RENAME Groups Sent")).startswith(b"NO [ALREADYEXISTS]")
        assert tagged_status(await c.command("DELETE Groups/python")) == b"OK"
        assert tagged_status(await c.command("DELETE Groups")) == b"OK"
        assert names(await c.command('LIST "" "Groups*"')) == []


async def test_create_with_special_use(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        assert tagged_status(await c.command("CREATE Everything (USE (\\All))")) == b"OK"
        assert b'* LIST (\\HasNoChildren \\All) "/" Everything' in await c.command(
            'LIST "" "Every*"')
        refused = await c.command("CREATE Odd (USE (\\Important))")
        assert tail(refused).startswith(b"NO [USEATTR]")


async def test_rename_inbox_moves_its_messages(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("old mail"))
        c = await h.login()
        assert tagged_status(await c.command("RENAME INBOX Old")) == b"OK"
        status = await c.command("STATUS Old (MESSAGES)")
        assert status[0] == b"* STATUS Old (MESSAGES 1)"
        assert (await c.command("STATUS INBOX (MESSAGES)"))[0] == b"* STATUS INBOX (MESSAGES 0)"


async def test_rename_of_the_selected_folder_keeps_it_usable(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        await c.command("CREATE Box")
        await h.deliver(message("in box"), folder="Box")
        assert tagged_status(await c.command("SELECT Box")) == b"OK"
        assert tagged_status(await c.command("RENAME Box Crate")) == b"OK"
        fetched = await c.command("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: in box" in fetched[0]


async def test_subscriptions_lsub_and_list_extended(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        await c.command("CREATE News/tech")
        assert tagged_status(await c.command("UNSUBSCRIBE Junk")) == b"OK"
        assert tagged_status(await c.command("UNSUBSCRIBE News")) == b"OK"
        subscribed = names(await c.command('LSUB "" "*"'))
        assert b"Junk" not in subscribed and b"INBOX" in subscribed
        assert b"News/tech" in subscribed and b"News" not in subscribed
        lsub_top = await c.command('LSUB "" "%"')
        assert b'* LSUB (\\Noselect) "/" News' in lsub_top
        extended = await c.command('LIST (SUBSCRIBED) "" "*"')
        assert b'* LIST (\\Subscribed \\HasNoChildren) "/" INBOX' in extended
        assert b"Junk" not in names(extended)
        recursive = await c.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
        assert b'* LIST (\\HasChildren) "/" News ("CHILDINFO" ("SUBSCRIBED"))' in recursive
        marked = await c.command('LIST "" "Junk" RETURN (SUBSCRIBED)')
        assert marked[0] == b'* LIST (\\HasNoChildren \\Junk) "/" Junk'
        assert tagged_status(await c.command("SUBSCRIBE Junk")) == b"OK"
        marked = await c.command('LIST "" "Junk" RETURN (SUBSCRIBED CHILDREN)')
        assert marked[0] == b'* LIST (\\Subscribed \\HasNoChildren \\Junk) "/" Junk'
        assert tail(await c.command("SUBSCRIBE Nowhere")).startswith(b"NO [NONEXISTENT]")


async def test_status_and_list_status(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("a"))
        await h.deliver(message("b"), flags=("\\Seen",))
        c = await h.login()
        status = await c.command(
            "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)")
        line = status[0]
        assert line.startswith(b"* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY ")
        assert b" UNSEEN 1 HIGHESTMODSEQ " in line and b" SIZE " in line
        assert tail(await c.command("STATUS Nowhere (MESSAGES)")).startswith(b"NO [NONEXISTENT]")
        listed = await c.command('LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))')
        assert b"* STATUS INBOX (MESSAGES 2 UNSEEN 1)" in listed
        assert b"* STATUS Sent (MESSAGES 0 UNSEEN 0)" in listed
        index = listed.index(b'* LIST (\\HasNoChildren) "/" INBOX')
        assert listed[index + 1] == b"* STATUS INBOX (MESSAGES 2 UNSEEN 1)"


async def test_select_and_examine_responses(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        await h.deliver(message("seen"), flags=("\\Seen",))
        await h.deliver(message("new"))
        c = await h.login()
        lines = await c.command("SELECT INBOX")
        assert lines[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
        assert lines[1] == (b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                            b"\\Draft \\*)] Flags permitted.")
        assert b"* 2 EXISTS" in lines and b"* 2 RECENT" in lines
        assert b"* OK [UNSEEN 2] First unseen." in lines
        assert any(line.startswith(b"* OK [UIDVALIDITY ") for line in lines)
        assert b"* OK [UIDNEXT 3] Predicted next UID" in lines
        assert any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in lines)
        assert lines[-1] == b"T2 OK [READ-WRITE] Select completed."

        # A second session: the messages are no longer recent there; EXAMINE is read-only.
        other = await h.login()
        examined = await other.command("EXAMINE INBOX")
        assert b"* 0 RECENT" in examined
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox." in examined
        assert examined[-1] == b"T2 OK [READ-ONLY] Examine completed."
        refused = await other.command("STORE 1 +FLAGS (\\Flagged)")
        assert tail(refused).startswith(b"NO [READ-ONLY]")

        again = await c.command("SELECT Sent")
        assert again[0] == b"* OK [CLOSED] Previous mailbox closed."
        assert b"* 0 EXISTS" in again
        missing = await c.command("SELECT Nowhere")
        assert tail(missing).startswith(b"NO [NONEXISTENT]")
        assert (await c.command("FETCH 1 FLAGS"))[-1] == b"T5 BAD No mailbox selected."


async def test_append_with_flags_and_date(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        data = message("appended")
        tag = c.next_tag()
        await c.send(f'{tag} APPEND Drafts (\\Draft \\Seen $Work) "14-Jul-2023 10:30:00 +0200"'
                     f" {{{len(data)}}}\r\n".encode())
        assert await c.line() == b"+ OK"
        await c.send(data + b"\r\n")
        reply = await c.until_tagged(tag)
        assert reply[-1].startswith(f"{tag} OK [APPENDUID ".encode())
        _uidvalidity, uid = reply[-1].split(b"[APPENDUID ")[1].split(b"]")[0].split()
        assert uid == b"1"
        await c.command("SELECT Drafts")
        fetched = await c.command("FETCH 1 (FLAGS INTERNALDATE UID)")
        assert fetched[0] == (b'* 1 FETCH (FLAGS (\\Seen \\Draft $Work \\Recent) '
                              b'INTERNALDATE "14-Jul-2023 08:30:00 +0000" UID 1)')
        # LITERAL+ needs no continuation.
        plus = await c.command(f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data)
        assert tail(plus).startswith(b"OK [APPENDUID ")


async def test_append_errors(tmp_path: Path) -> None:
    async with imap_server(tmp_path, quota=1000) as h:
        c = await h.login()
        small = message("fits")
        missing = await c.command(f"APPEND Nowhere {{{len(small)}+}}\r\n".encode() + small)
        assert tail(missing).startswith(b"NO [TRYCREATE]")
        assert tagged_status(await c.command(
            f"APPEND INBOX {{{len(small)}+}}\r\n".encode() + small)) == b"OK"
        big = message("too big", "x" * 2000)
        over = await c.command(f"APPEND INBOX {{{len(big)}+}}\r\n".encode() + big)
        assert tail(over).startswith(b"NO [OVERQUOTA]")
        empty = await c.command(b"APPEND INBOX {0+}\r\n")
        assert tagged_status(empty) == b"NO"


async def test_quota(tmp_path: Path) -> None:
    async with imap_server(tmp_path, quota=10 * 1024) as h:
        await h.deliver(message("x", "y" * 3000))
        c = await h.login()
        lines = await c.command("GETQUOTAROOT INBOX")
        assert lines[0] == b'* QUOTAROOT INBOX ""'
        assert lines[1] == b'* QUOTA "" (STORAGE 4 10)'
        assert (await c.command('GETQUOTA ""'))[0] == b'* QUOTA "" (STORAGE 4 10)'
        assert tagged_status(await c.command('GETQUOTA "other"')) == b"NO"
        assert tail(await c.command("GETQUOTAROOT Nowhere")).startswith(b"NO [NONEXISTENT]")
        assert tagged_status(await c.command('SETQUOTA "" (STORAGE 99999)')) == b"NO"


async def test_quota_of_an_unlimited_account(tmp_path: Path) -> None:
    async with imap_server(tmp_path) as h:
        c = await h.login()
        lines = await c.command("GETQUOTAROOT INBOX")
        assert lines[:2] == [b'* QUOTAROOT INBOX ""', b'* QUOTA "" ()']
