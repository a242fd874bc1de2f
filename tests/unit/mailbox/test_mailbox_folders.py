"""Folders through StoreMailboxes on both engines: defaults, names, create/delete/rename,
subscriptions, status and UIDVALIDITY."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock
from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import raw_rows

from hayate.mailbox.model import (
    DEFAULT_FOLDERS,
    FolderExists,
    FolderNotFound,
    FolderStatus,
    MailboxError,
)
from hayate.mailbox.service import StoreMailboxes, folder_name
from hayate.store import ops
from hayate.store.base import DEFAULT_FOLDERS as STORE_DEFAULT_FOLDERS
from hayate.store.schema import MIGRATIONS
from hayate.store.sqlstore import SqlStore


def test_store_and_model_agree_on_the_default_folders() -> None:
    assert STORE_DEFAULT_FOLDERS == DEFAULT_FOLDERS


async def test_a_new_account_has_inbox_and_the_special_use_folders(amy: StoreMailboxes) -> None:
    folders = await amy.folders()
    assert [(f.name, f.special_use) for f in folders] == [
        ("INBOX", None), ("Archive", "\\Archive"), ("Drafts", "\\Drafts"),
        ("Junk", "\\Junk"), ("Sent", "\\Sent"), ("Trash", "\\Trash"),
    ]
    assert len({f.uidvalidity for f in folders}) == 6
    assert len({f.id for f in folders}) == 6
    assert all(f.subscribed and f.uidnext == 1 for f in folders)


async def test_an_account_from_before_migration_3_gets_its_defaults_once(
    blank_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(ops, "MIGRATIONS", MIGRATIONS[:2])
        assert await blank_store.migrate() == [1, 2]
    # What version 2 made: an account with INBOX, and a "Sent" a client created.
    await raw_rows(
        blank_store,
        "INSERT INTO accounts (address, domain, password_hash, created) VALUES (?, ?, ?, ?)",
        (AMY, "example.com", "x", 0.0),
    )
    [(account_id,)] = await raw_rows(blank_store, "SELECT id FROM accounts")
    for name, uidvalidity in (("INBOX", 1000), ("Sent", 1001)):
        await raw_rows(
            blank_store,
            "INSERT INTO mailboxes (account, name, uidvalidity) VALUES (?, ?, ?)",
            (account_id, name, uidvalidity),
        )
    assert await blank_store.migrate() == [3, 4, 5]
    await blank_store.deliver(AMY, b"kept")
    assert [m.name for m in await blank_store.list_mailboxes(AMY)] == ["INBOX", "Sent"]

    first = StoreMailboxes(blank_store, AMY)
    folders = {f.name: f for f in await first.folders()}
    assert {n: f.special_use for n, f in folders.items()} == {
        "INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
        "Junk": "\\Junk", "Archive": "\\Archive",
    }
    assert (await first.status("INBOX")).messages == 1
    # The user deletes Junk; a later session does not bring it back.
    await first.delete_folder("Junk")
    later = StoreMailboxes(blank_store, AMY)
    assert "Junk" not in {f.name for f in await later.folders()}
    # Folders created later still get a fresh UIDVALIDITY, even in the same second.
    made = await later.create_folder("New")
    assert made.uidvalidity not in {f.uidvalidity for f in folders.values()}
    assert folders["Sent"].uidvalidity == 1001 and folders["INBOX"].uidvalidity == 1000


@pytest.mark.parametrize(
    ("given", "stored"),
    [("inbox", "INBOX"), ("InBoX/Sub", "INBOX/Sub"), ("a/b c/d", "a/b c/d"),
     ("Inboxes", "Inboxes"), ("Ünïcode/名前", "Ünïcode/名前")],
)
def test_folder_names_are_spelled_one_way(given: str, stored: str) -> None:
    assert folder_name(given) == stored


@pytest.mark.parametrize(
    "bad", ["", "/a", "a/", "a//b", "a\x00b", "tab\there", "del\x7f", "x" * 256],
)
def test_bad_folder_names_are_refused(bad: str) -> None:
    with pytest.raises(MailboxError):
        folder_name(bad)


async def test_create_makes_parents_and_refuses_duplicates(amy: StoreMailboxes) -> None:
    made = await amy.create_folder("Lists/python/dev")
    assert made.name == "Lists/python/dev" and made.uidnext == 1
    names = [f.name for f in await amy.folders()]
    assert {"Lists", "Lists/python", "Lists/python/dev"} <= set(names)
    assert names[0] == "INBOX" and names[1:] == sorted(names[1:])
    with pytest.raises(FolderExists):
        await amy.create_folder("Lists/python")
    with pytest.raises(FolderExists):
        await amy.create_folder("inbox")
    await amy.create_folder("inbox/Receipts")  # under INBOX
    assert (await amy.folder("inbox/Receipts")).name == "INBOX/Receipts"
    with pytest.raises(MailboxError):
        await amy.create_folder("a//b")
    with pytest.raises(MailboxError):
        await amy.create_folder("Stuff", special_use="\\Important")
    flagged = await amy.create_folder("Starred", special_use="\\flagged")
    assert flagged.special_use == "\\Flagged"
    with pytest.raises(FolderNotFound):
        await amy.folder("Nope")


async def test_delete_refuses_inbox_children_and_unknown(amy: StoreMailboxes) -> None:
    await amy.create_folder("a/b")
    with pytest.raises(MailboxError, match="INBOX"):
        await amy.delete_folder("inbox")
    with pytest.raises(MailboxError, match="child"):
        await amy.delete_folder("a")
    with pytest.raises(FolderNotFound):
        await amy.delete_folder("zzz")
    await amy.delete_folder("a/b")
    await amy.delete_folder("a")
    assert "a" not in {f.name for f in await amy.folders()}


async def test_delete_frees_quota_and_recreating_starts_afresh(
    store: SqlStore, amy: StoreMailboxes, clock: FakeClock
) -> None:
    await amy.create_folder("Work")
    for body in (b"one", b"two!"):
        await amy.append("Work", body)
    assert (await amy.quota()).used == 7
    old = await amy.folder("Work")
    await amy.delete_folder("Work")
    assert (await amy.quota()).used == 0
    assert (await raw_rows(store, "SELECT count(*) FROM messages"))[0][0] == 0
    # Same second: still a new UIDVALIDITY (and a new id); UIDs start again at 1.
    again = await amy.create_folder("Work")
    assert again.uidvalidity != old.uidvalidity and again.id != old.id
    assert await amy.append("Work", b"three") == (again.uidvalidity, 1)
    clock.advance(100)
    later = await amy.create_folder("Later")
    assert later.uidvalidity == int(clock.now())


async def test_rename_moves_children_and_keeps_messages(amy: StoreMailboxes) -> None:
    await amy.create_folder("Projects/alpha/notes")
    await amy.append("Projects/alpha", b"msg", flags=["\\Seen"])
    before = await amy.folder("Projects/alpha")
    await amy.rename_folder("Projects/alpha", "Archive/2024/alpha")
    names = {f.name for f in await amy.folders()}
    assert {"Archive/2024", "Archive/2024/alpha", "Archive/2024/alpha/notes"} <= names
    assert not any(n.startswith("Projects/alpha") for n in names)
    after = await amy.folder("Archive/2024/alpha")
    assert (after.id, after.uidvalidity, after.uidnext) == (
        before.id, before.uidvalidity, before.uidnext
    )
    assert [m.uid for m in await amy.messages(after, ((1, 10),))] == [1]
    # A sibling whose name merely starts the same way is left alone.
    await amy.create_folder("Archive/2024/alphabet")
    await amy.rename_folder("Archive/2024/alpha", "A")
    names = {f.name for f in await amy.folders()}
    assert {"A", "A/notes", "Archive/2024/alphabet"} <= names


async def test_rename_refusals(amy: StoreMailboxes) -> None:
    await amy.create_folder("x/y")
    with pytest.raises(FolderNotFound):
        await amy.rename_folder("nope", "other")
    with pytest.raises(FolderExists):
        await amy.rename_folder("x", "Sent")
    with pytest.raises(FolderExists):
        await amy.rename_folder("x/y", "x/y")
    with pytest.raises(FolderExists):
        await amy.rename_folder("x/y", "inbox")
    with pytest.raises(MailboxError, match="itself"):
        await amy.rename_folder("x", "x/y/z")
    assert {"x", "x/y"} <= {f.name for f in await amy.folders()}


async def test_renaming_inbox_moves_its_messages_and_leaves_it_empty(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    await amy.create_folder("INBOX/kept")
    for body in (b"first", b"second"):
        await store.deliver(AMY, body)
    inbox = await amy.folder("INBOX")
    await amy.rename_folder("INBOX", "Old/mail")
    old = await amy.folder("Old/mail")
    assert old.uidvalidity != inbox.uidvalidity
    assert list(await amy.uids(old)) == [1, 2]
    assert await amy.body(old, 2) == b"second"
    assert (await amy.status("Old/mail")).uidnext == 3
    now_inbox = await amy.folder("INBOX")
    assert now_inbox.id == inbox.id and list(await amy.uids(now_inbox)) == []
    # A session that had INBOX open sees both messages vanish; UIDs go on from 3.
    changes = await amy.changes_since(inbox, inbox.highestmodseq)
    assert changes.vanished == [1, 2] and changes.changed == []
    assert await store.deliver(AMY, b"new") == 3
    assert "INBOX/kept" in {f.name for f in await amy.folders()}  # children stay
    assert (await amy.quota()).used == len(b"firstsecondnew")


async def test_subscribe(amy: StoreMailboxes) -> None:
    await amy.subscribe("Junk", False)
    assert (await amy.folder("Junk")).subscribed is False
    await amy.subscribe("junk".capitalize(), True)
    assert (await amy.folder("Junk")).subscribed is True
    with pytest.raises(FolderNotFound):
        await amy.subscribe("Nope", True)


async def test_status_counts(store: SqlStore, amy: StoreMailboxes) -> None:
    empty = await amy.status("Drafts")
    drafts = await amy.folder("Drafts")
    assert empty == FolderStatus(0, 0, 0, 1, drafts.uidvalidity, 1, 0, 0)
    await amy.append("INBOX", b"a" * 10, flags=["\\Seen"])
    await amy.append("INBOX", b"b" * 20, flags=["\\Deleted", "$Work"])
    await amy.append("INBOX", b"c" * 30, flags=["\\seen", "\\DELETED"])
    await amy.append("INBOX", b"d" * 40)
    status = await amy.status("inbox")
    inbox = await amy.folder("INBOX")
    assert status == FolderStatus(
        messages=4, recent=4, unseen=2, uidnext=5, uidvalidity=inbox.uidvalidity,
        highestmodseq=5, size=100, deleted=2,
    )
    assert await amy.claim_recent(inbox) == 1
    assert (await amy.status("INBOX")).recent == 0
    with pytest.raises(FolderNotFound):
        await amy.status("Nope")


async def test_unknown_account(store: SqlStore) -> None:
    ghost = StoreMailboxes(store, "ghost@example.com")
    with pytest.raises(MailboxError):
        await ghost.folders()
    with pytest.raises(MailboxError):
        StoreMailboxes(store, "not an address")
