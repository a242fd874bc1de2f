"""The mailbox service's folder transactions (sans-I/O ops, see ``hayate.store.ops``): an
account's default folders and quota, folders (list, create with parents, delete, rename with
children, INBOX rename, subscribe, STATUS counts), the watcher's and retention's folder
lookups, and the POP3 maildrop locks. Message ops live in ``hayate.store.mailbox_ops``.

Flags are stored space separated, as the service hands them over (system flags already
spelled canonically, keywords never holding a backslash), so a SQL test for a system flag
is ``flags LIKE '%\\Seen%' ESCAPE '!'`` (:data:`HAS_FLAG`; the ESCAPE clause because
PostgreSQL would read the backslash as an escape). Folder names arrive checked and
canonical (``hayate.mailbox.service.folder_name``); a child's name starts with its
parent's name and ``/``, which ``substr`` compares (no LIKE, so no wildcard in a name
matters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hayate.store.base import (
    DEFAULT_FOLDERS,
    HIERARCHY_SEPARATOR,
    INBOX,
    FolderCounts,
    FolderRecord,
    MailboxExists,
    MailboxRefused,
    NoSuchMailbox,
)
from hayate.store.ops import Op, Query, insert_mailbox, next_uidvalidity, release_bytes
from hayate.store.tombstones import bury_all

MAX_PARAMS = 400  # parameters of one statement's list of ids or UID-set condition
HAS_FLAG = "flags LIKE ? ESCAPE '!'"
SEEN = "%\\Seen%"
DELETED = "%\\Deleted%"
FOLDER_COLUMNS = "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed"


def owner(account_id: int) -> str:
    """How errors name an account known by its id."""
    return f"#{account_id}"


def folder_record(row: Sequence[Any]) -> FolderRecord:
    special = None if row[5] is None else str(row[5])
    return FolderRecord(
        int(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]), special, bool(row[6])
    )


def parents_of(name: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]``."""
    levels = name.split(HIERARCHY_SEPARATOR)
    return [HIERARCHY_SEPARATOR.join(levels[:i]) for i in range(1, len(levels))]


# --------------------------------------------------------------------------- accounts


def account_state(address: str) -> Op[tuple[int, bool] | None]:
    """(account id, default folders made) or None."""
    res = yield Query("SELECT id, folders_ready FROM accounts WHERE address = ?", (address,))
    return (int(res.rows[0][0]), bool(res.rows[0][1])) if res.rows else None


def ensure_default_folders(account_id: int, now: float) -> Op[None]:
    """Give an account made before the default folders existed the ones it lacks: a folder
    already named like one gets its special use; a special use already present is kept."""
    res = yield Query(
        "SELECT name, special_use FROM mailboxes WHERE account = ?", (account_id,)
    )
    names = {str(r[0]) for r in res.rows}
    uses = {str(r[1]) for r in res.rows if r[1] is not None}
    for name, use in DEFAULT_FOLDERS:
        if use in uses:
            continue
        if name in names:
            yield Query(
                "UPDATE mailboxes SET special_use = ?"
                " WHERE account = ? AND name = ? AND special_use IS NULL",
                (use, account_id, name),
            )
        else:
            yield from insert_mailbox(account_id, name, use, now)
    yield Query("UPDATE accounts SET folders_ready = ? WHERE id = ?", (True, account_id))


def account_quota(address: str) -> Op[tuple[int, int] | None]:
    res = yield Query(
        "SELECT used_bytes, quota_bytes FROM accounts WHERE address = ?", (address,)
    )
    return (int(res.rows[0][0]), int(res.rows[0][1])) if res.rows else None


# --------------------------------------------------------------------------- folders


def list_folders(account_id: int) -> Op[list[FolderRecord]]:
    res = yield Query(f"SELECT {FOLDER_COLUMNS} FROM mailboxes WHERE account = ?", (account_id,))
    folders = [folder_record(row) for row in res.rows]
    folders.sort(key=lambda f: (f.name != INBOX, f.name))
    return folders


def get_folder(account_id: int, name: str) -> Op[FolderRecord | None]:
    res = yield Query(
        f"SELECT {FOLDER_COLUMNS} FROM mailboxes WHERE account = ? AND name = ?", (account_id, name)
    )
    return folder_record(res.rows[0]) if res.rows else None


def create_folder(
    account_id: int, name: str, special_use: str | None, now: float
) -> Op[FolderRecord]:
    for parent in parents_of(name):
        yield from insert_mailbox(account_id, parent, None, now)
    made = yield from insert_mailbox(account_id, name, special_use, now)
    if made is None:
        raise MailboxExists(owner(account_id), name)
    folder_id, info = made
    return FolderRecord(
        folder_id, info.name, info.uidvalidity, info.uidnext, info.highestmodseq,
        info.special_use, info.subscribed,
    )


def _has_children(account_id: int, name: str) -> Op[bool]:
    prefix = name + HIERARCHY_SEPARATOR
    res = yield Query(
        "SELECT 1 FROM mailboxes WHERE account = ?"
        " AND substr(name, 1, CAST(? AS INTEGER)) = ? LIMIT 1",
        (account_id, len(prefix), prefix),
    )
    return bool(res.rows)


def delete_folder(account_id: int, name: str) -> Op[None]:
    if name == INBOX:
        raise MailboxRefused("INBOX cannot be deleted")
    res = yield Query(
        "UPDATE mailboxes SET uidnext = uidnext WHERE account = ? AND name = ? RETURNING id",
        (account_id, name),
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), name)
    folder_id = int(res.rows[0][0])
    if (yield from _has_children(account_id, name)):
        raise MailboxRefused(f"{name} has child folders: delete them first")
    res = yield Query(
        "SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?", (folder_id,)
    )
    yield from release_bytes(account_id, int(res.rows[0][0]))  # the account lock, then
    # the bodies only this folder's messages reference (the rule of ``hayate.store.ops``);
    # the foreign key is deferred, so they may go before the messages that cascade away.
    yield Query(
        "DELETE FROM message_bodies WHERE id IN (SELECT body_id FROM messages"
        " WHERE mailbox_id = ?) AND NOT EXISTS (SELECT 1 FROM messages m"
        " WHERE m.body_id = message_bodies.id AND m.mailbox_id <> ?)",
        (folder_id, folder_id),
    )
    yield Query("DELETE FROM mailboxes WHERE id = ?", (folder_id,))


def rename_folder(account_id: int, old: str, new: str, now: float) -> Op[None]:
    if old == INBOX:
        yield from _rename_inbox(account_id, new, now)
        return
    res = yield Query(
        "SELECT id FROM mailboxes WHERE account = ? AND name = ?", (account_id, old)
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), old)
    if new.startswith(old + HIERARCHY_SEPARATOR):
        raise MailboxRefused(f"{old} cannot be moved under itself")
    new_prefix = new + HIERARCHY_SEPARATOR
    res = yield Query(
        "SELECT 1 FROM mailboxes WHERE account = ?"
        " AND (name = ? OR substr(name, 1, CAST(? AS INTEGER)) = ?) LIMIT 1",
        (account_id, new, len(new_prefix), new_prefix),
    )
    if res.rows or new == INBOX:
        raise MailboxExists(owner(account_id), new)
    for parent in parents_of(new):
        yield from insert_mailbox(account_id, parent, None, now)
    old_prefix = old + HIERARCHY_SEPARATOR
    yield Query(
        "UPDATE mailboxes SET name = ? || substr(name, CAST(? AS INTEGER))"
        " WHERE account = ? AND (name = ? OR substr(name, 1, CAST(? AS INTEGER)) = ?)",
        (new, len(old) + 1, account_id, old, len(old_prefix), old_prefix),
    )


def _rename_inbox(account_id: int, new: str, now: float) -> Op[None]:
    """RFC 3501: the messages go to a new folder ``new`` (keeping their UIDs: the folder has
    a UIDVALIDITY of its own), INBOX stays with none; its children do not move."""
    res = yield Query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
        " WHERE account = ? AND name = ? RETURNING id, uidnext, highestmodseq, recent_uid",
        (account_id, INBOX),
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), INBOX)
    inbox_id, uidnext, modseq, recent = (int(v) for v in res.rows[0])
    res = yield Query(
        "SELECT 1 FROM mailboxes WHERE account = ? AND name = ?", (account_id, new)
    )
    if res.rows or new == INBOX:
        raise MailboxExists(owner(account_id), new)
    for parent in parents_of(new):
        yield from insert_mailbox(account_id, parent, None, now)
    uidvalidity = yield from next_uidvalidity(account_id, now)
    res = yield Query(
        "INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq,"
        " special_use, subscribed, recent_uid) VALUES (?, ?, ?, ?, ?, NULL, ?, ?) RETURNING id",
        (account_id, new, uidvalidity, uidnext, modseq, True, recent),
    )
    new_id = int(res.rows[0][0])
    yield from bury_all(inbox_id, modseq)
    yield Query("UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?", (new_id, inbox_id))


def subscribe_folder(account_id: int, name: str, subscribed: bool) -> Op[bool]:
    res = yield Query(
        "UPDATE mailboxes SET subscribed = ? WHERE account = ? AND name = ? RETURNING id",
        (subscribed, account_id, name),
    )
    return bool(res.rows)


def folder_status(account_id: int, name: str) -> Op[FolderCounts | None]:
    """The folder row and its counts in one statement (one snapshot); the counts read only
    the ``messages_meta`` index on SQLite."""
    res = yield Query(
        "WITH f AS (SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use,"
        " subscribed, recent_uid FROM mailboxes WHERE account = ? AND name = ?)"
        " SELECT f.id, f.name, f.uidvalidity, f.uidnext, f.highestmodseq, f.special_use,"
        " f.subscribed, a.n, a.total, a.recent, a.unseen, a.deleted FROM f,"
        " (SELECT count(*) AS n, coalesce(sum(size), 0) AS total,"
        " coalesce(sum(CASE WHEN uid >= (SELECT recent_uid FROM f) THEN 1 ELSE 0 END), 0)"
        " AS recent,"
        f" coalesce(sum(CASE WHEN {HAS_FLAG} THEN 0 ELSE 1 END), 0) AS unseen,"
        f" coalesce(sum(CASE WHEN {HAS_FLAG} THEN 1 ELSE 0 END), 0) AS deleted"
        " FROM messages WHERE mailbox_id = (SELECT id FROM f)) AS a",
        (account_id, name, SEEN, DELETED),
    )
    if not res.rows:
        return None
    row = res.rows[0]
    return FolderCounts(
        folder=folder_record(row[:7]),
        messages=int(row[7]),
        size=int(row[8]),
        recent=int(row[9]),
        unseen=int(row[10]),
        deleted=int(row[11]),
    )


def folder_versions(folder_ids: Sequence[int]) -> Op[dict[int, tuple[int, int]]]:
    out: dict[int, tuple[int, int]] = {}
    for start in range(0, len(folder_ids), MAX_PARAMS):
        chunk = tuple(folder_ids[start : start + MAX_PARAMS])
        res = yield Query(
            "SELECT id, highestmodseq, uidnext FROM mailboxes WHERE id IN ("
            + ", ".join("?" * len(chunk)) + ")",
            chunk,
        )
        for folder_id, modseq, uidnext in res.rows:
            out[int(folder_id)] = (int(modseq), int(uidnext))
    return out


def find_folders(name: str | None, special_use: str | None) -> Op[list[int]]:
    if special_use is not None:
        res = yield Query(
            "SELECT id FROM mailboxes WHERE special_use = ? ORDER BY id", (special_use,)
        )
    else:
        res = yield Query("SELECT id FROM mailboxes WHERE name = ? ORDER BY id", (name,))
    return [int(r[0]) for r in res.rows]


# --------------------------------------------------------------------------- POP3 locks


def acquire_lock(account: str, holder: str, now: float, ttl: float) -> Op[bool]:
    res = yield Query(
        "INSERT INTO mailbox_locks (account, holder, expires) VALUES (?, ?, ?)"
        " ON CONFLICT (account) DO UPDATE SET holder = excluded.holder,"
        " expires = excluded.expires"
        " WHERE mailbox_locks.expires <= ? OR mailbox_locks.holder = excluded.holder"
        " RETURNING holder",
        (account, holder, now + ttl, now),
    )
    return bool(res.rows)


def refresh_lock(account: str, holder: str, now: float, ttl: float) -> Op[bool]:
    res = yield Query(
        "UPDATE mailbox_locks SET expires = ? WHERE account = ? AND holder = ? RETURNING holder",
        (now + ttl, account, holder),
    )
    return bool(res.rows)


def release_lock(account: str, holder: str) -> Op[None]:
    yield Query("DELETE FROM mailbox_locks WHERE account = ? AND holder = ?", (account, holder))
