"""Every store transaction, written once as a sans-I/O generator shared by both engines.

An op is a generator that yields :class:`Query` values and receives a :class:`Result` for
each; its return value is the op's result, and an exception raised inside it rolls the
transaction back. An engine drives the op inside one transaction (SQLite synchronously,
PostgreSQL with ``await``), so the SQL and the rules live here, the I/O in the engines.
SQL uses ``?`` placeholders and only what SQLite >= 3.35 and PostgreSQL both understand
(``RETURNING``, ``ON CONFLICT ... DO NOTHING``).

UIDs. A delivery allocates its UID with one ``UPDATE mailboxes SET uidnext = uidnext + 1
... RETURNING``: a row lock on PostgreSQL, the database write lock (BEGIN IMMEDIATE) on
SQLite, so concurrent deliveries from any number of tasks or processes get distinct UIDs
in commit order, without gaps.

Lock order (PostgreSQL row locks), to keep transactions from deadlocking one another:
mailboxes (several in ascending id), then messages, then accounts, then message_bodies; a
batch takes one address after the other in ascending order. Every transaction that changes
a folder's messages locks its mailbox row first (that is also where it takes the next
modseq), so changes to one folder are serialized and commit in modseq order.

Message bodies (``message_bodies``, schema version 4). A delivery or APPEND inserts its
body once; COPY and MOVE insert message rows pointing at the same body (MOVE then deletes
the old rows, so its bodies keep a reference). A body is only ever shared by messages of one
account. Whatever deletes messages (expunge, retention, DELETE of a folder or an account)
then deletes the bodies it referenced that no message references any more
(:func:`forget_messages`, a ``NOT EXISTS`` check on the ``messages_body`` index: no
reference counter, because a counter in the body's row would make SQLite rewrite the whole
body on every COPY and expunge). That check runs after the account row is locked (the
quota update), so on PostgreSQL two transactions dropping the last two references to one
body are serialized and the second one's statement sees the first one's delete (under READ
COMMITTED each would otherwise see the other's row and both keep the body). This is why
bodies come after accounts in the lock order. New references need no lock: COPY reads a
body's reference inside a folder it has locked, so that reference cannot be dropped
meanwhile and the body stays. SQLite serializes all writes (BEGIN IMMEDIATE) anyway.

Alias expansion (:func:`expand`). For each address, in this order: an exact alias rewrites
it to its targets; else a local account keeps it; else a catch-all ``@domain`` alias
rewrites it; else it stays as it is (a remote address, or an unknown local one that the
caller rejects). Targets are expanded again, recursively. An address met again on its own
chain of rewrites (``a → a, copy@x`` or a loop ``a → b → a``) is final and not expanded
again; an address already expanded on another branch is not expanded twice. The result
keeps first-seen order without duplicates. More than ``max_depth`` rewrites in one chain
raises AliasDepthExceeded.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from hayate.store.addresses import catch_all_of, join_flags, split_flags
from hayate.store.base import (
    DEFAULT_FOLDERS,
    INBOX,
    Account,
    AccountExists,
    Alias,
    AliasDepthExceeded,
    MailboxExists,
    MailboxInfo,
    NoSuchAccount,
    NoSuchMailbox,
    QuotaExceeded,
    StoredMessage,
    StoreError,
)
from hayate.store.schema import MIGRATIONS, VERSION_TABLE, Dialect

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Query:
    """One statement. With ``many`` it runs once per row of ``many`` (executemany, no rows
    come back) and ``params`` is ignored."""

    sql: str
    params: tuple[Any, ...] = ()
    many: tuple[tuple[Any, ...], ...] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    rows: list[tuple[Any, ...]]
    rowcount: int = -1


Op: TypeAlias = Generator[Query, Result, T]


def where(*filters: tuple[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE a AND b`` and its parameters for the (clause, value) filters whose value is
    not None; ("", ()) when none is."""
    given = [(clause, value) for clause, value in filters if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(c for c, _ in given), tuple(v for _, v in given)


# --------------------------------------------------------------------------- schema


def migrate(dialect: Dialect, now: float) -> Op[list[int]]:
    """Apply the migrations this database lacks; returns their versions."""
    if dialect.migrate_lock:
        yield Query(dialect.migrate_lock)
    yield Query(dialect.render(VERSION_TABLE))
    res = yield Query("SELECT max(version) FROM schema_version")
    current = int(res.rows[0][0] or 0)
    known = MIGRATIONS[-1].version
    if current > known:
        raise StoreError(
            f"the database schema is version {current}; this Hayate knows up to {known}"
        )
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            sql = dialect.statement(statement)
            if sql is not None:
                yield Query(sql)
        yield Query(
            "INSERT INTO schema_version (version, description, applied) VALUES (?, ?, ?)",
            (migration.version, migration.description, now),
        )
        applied.append(migration.version)
    return applied


def schema_version() -> Op[int]:
    res = yield Query("SELECT max(version) FROM schema_version")
    return int(res.rows[0][0] or 0)


# --------------------------------------------------------------------------- accounts

_ACCOUNT = "address, created, quota_bytes, used_bytes, disabled"


def _account(row: tuple[Any, ...]) -> Account:
    return Account(str(row[0]), float(row[1]), int(row[2]), int(row[3]), bool(row[4]))


def add_account(
    address: str, domain: str, password_hash: str, quota_bytes: int, now: float
) -> Op[Account]:
    res = yield Query(
        "INSERT INTO accounts (address, domain, password_hash, created, quota_bytes,"
        " used_bytes, disabled) VALUES (?, ?, ?, ?, ?, 0, ?)"
        " ON CONFLICT (address) DO NOTHING RETURNING id",
        (address, domain, password_hash, now, quota_bytes, False),
    )
    if not res.rows:
        raise AccountExists(address)
    account_id = int(res.rows[0][0])
    # INBOX and the default folders, with consecutive UIDVALIDITY values from now on.
    first = _uidvalidity(now)
    folders = ((INBOX, None), *DEFAULT_FOLDERS)
    yield Query(
        "INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq,"
        " special_use, subscribed) VALUES (?, ?, ?, 1, 1, ?, ?)",
        many=tuple(
            (account_id, name, first + i, use, True) for i, (name, use) in enumerate(folders)
        ),
    )
    yield Query(
        "UPDATE accounts SET uidvalidity_last = ?, folders_ready = ? WHERE id = ?",
        (first + len(folders) - 1, True, account_id),
    )
    return Account(address, now, quota_bytes, 0, False)


def delete_account(address: str) -> Op[bool]:
    # Mailboxes first (the lock order): once they are locked no other transaction can be
    # changing their messages. Then the account row, the bodies (only this account's
    # messages reference them), and the cascade from the account removes everything else.
    yield Query(
        "UPDATE mailboxes SET uidnext = uidnext"
        " WHERE account = (SELECT id FROM accounts WHERE address = ?)",
        (address,),
    )
    res = yield Query(
        "UPDATE accounts SET used_bytes = used_bytes WHERE address = ? RETURNING id", (address,)
    )
    if not res.rows:
        return False
    account_id = int(res.rows[0][0])
    yield Query(
        "DELETE FROM message_bodies WHERE id IN (SELECT m.body_id FROM messages m"
        " JOIN mailboxes f ON f.id = m.mailbox_id WHERE f.account = ?)",
        (account_id,),
    )
    res = yield Query("DELETE FROM accounts WHERE id = ? RETURNING id", (account_id,))
    return bool(res.rows)


def get_account(address: str) -> Op[Account | None]:
    res = yield Query(f"SELECT {_ACCOUNT} FROM accounts WHERE address = ?", (address,))
    return _account(res.rows[0]) if res.rows else None


def list_accounts(domain: str | None) -> Op[list[Account]]:
    if domain is None:
        res = yield Query(f"SELECT {_ACCOUNT} FROM accounts ORDER BY address")
    else:
        res = yield Query(
            f"SELECT {_ACCOUNT} FROM accounts WHERE domain = ? ORDER BY address", (domain,)
        )
    return [_account(row) for row in res.rows]


def credentials(address: str) -> Op[tuple[int, str, Account] | None]:
    """(account id, password hash, account) for a login."""
    res = yield Query(
        f"SELECT id, password_hash, {_ACCOUNT} FROM accounts WHERE address = ?", (address,)
    )
    if not res.rows:
        return None
    row = res.rows[0]
    return int(row[0]), str(row[1]), _account(row[2:])


def set_password(address: str, password_hash: str) -> Op[bool]:
    res = yield Query(
        "UPDATE accounts SET password_hash = ? WHERE address = ? RETURNING id",
        (password_hash, address),
    )
    return bool(res.rows)


def replace_hash(account_id: int, old_hash: str, new_hash: str) -> Op[bool]:
    """Rehash after a login, unless the password was changed meanwhile."""
    res = yield Query(
        "UPDATE accounts SET password_hash = ? WHERE id = ? AND password_hash = ? RETURNING id",
        (new_hash, account_id, old_hash),
    )
    return bool(res.rows)


def set_quota(address: str, quota_bytes: int) -> Op[bool]:
    res = yield Query(
        "UPDATE accounts SET quota_bytes = ? WHERE address = ? RETURNING id",
        (quota_bytes, address),
    )
    return bool(res.rows)


def set_disabled(address: str, disabled: bool) -> Op[bool]:
    res = yield Query(
        "UPDATE accounts SET disabled = ? WHERE address = ? RETURNING id", (disabled, address)
    )
    return bool(res.rows)


# --------------------------------------------------------------------------- aliases


def set_alias(source: str, targets: Sequence[str]) -> Op[Alias]:
    yield Query("DELETE FROM aliases WHERE source = ?", (source,))
    for position, target in enumerate(targets):
        yield Query(
            "INSERT INTO aliases (source, target, position) VALUES (?, ?, ?)",
            (source, target, position),
        )
    return Alias(source, tuple(targets))


def delete_alias(source: str) -> Op[bool]:
    res = yield Query("DELETE FROM aliases WHERE source = ? RETURNING target", (source,))
    return bool(res.rows)


def get_alias(source: str) -> Op[list[str] | None]:
    res = yield Query("SELECT target FROM aliases WHERE source = ? ORDER BY position", (source,))
    return [str(row[0]) for row in res.rows] or None


def list_aliases() -> Op[list[Alias]]:
    res = yield Query("SELECT source, target FROM aliases ORDER BY source, position")
    grouped: dict[str, list[str]] = {}
    for source, target in res.rows:
        grouped.setdefault(str(source), []).append(str(target))
    return [Alias(source, tuple(targets)) for source, targets in grouped.items()]


def _rewrite(address: str) -> Op[list[str] | None]:
    """The targets ``address`` is rewritten to, or None when it is final."""
    exact = yield from get_alias(address)
    if exact is not None:
        return exact
    res = yield Query("SELECT 1 FROM accounts WHERE address = ?", (address,))
    if res.rows:
        return None
    return (yield from get_alias(catch_all_of(address)))


def expand(address: str, max_depth: int) -> Op[list[str]]:
    """Recursive alias expansion; the rules are in the module docstring."""
    final: dict[str, None] = {}
    expanded: set[str] = set()

    def walk(addr: str, chain: tuple[str, ...]) -> Op[None]:
        if addr in chain:
            final.setdefault(addr)
            return
        if addr in expanded:
            return
        expanded.add(addr)
        targets = yield from _rewrite(addr)
        if targets is None:
            final.setdefault(addr)
            return
        if len(chain) >= max_depth:
            raise AliasDepthExceeded(address, max_depth)
        for target in targets:
            yield from walk(target, (*chain, addr))

    yield from walk(address, ())
    return list(final)


# --------------------------------------------------------------------------- mailboxes

_MAILBOX = "name, uidvalidity, uidnext, highestmodseq, special_use, subscribed"


def _mailbox(row: tuple[Any, ...]) -> MailboxInfo:
    special = None if row[4] is None else str(row[4])
    return MailboxInfo(str(row[0]), int(row[1]), int(row[2]), int(row[3]), special, bool(row[5]))


def _uidvalidity(now: float) -> int:
    # Seconds since the epoch, like Dovecot: a re-created mailbox gets a new value. Kept in
    # the nz-number range of IMAP (1 .. 2**32-1).
    return max(1, int(now) % 0xFFFFFFFF)


def next_uidvalidity(account_id: int, now: float) -> Op[int]:
    """A UIDVALIDITY for a new folder of the account: now in seconds, or one more than the
    last one it gave when that is not lower (two folders made in one second differ).
    Locks the account row."""
    value = _uidvalidity(now)
    res = yield Query(
        "UPDATE accounts SET uidvalidity_last = CASE WHEN uidvalidity_last < ? THEN ?"
        " ELSE uidvalidity_last + 1 END WHERE id = ? RETURNING uidvalidity_last",
        (value, value, account_id),
    )
    if not res.rows:
        raise StoreError(f"account #{account_id} vanished")
    return int(res.rows[0][0])


def insert_mailbox(
    account_id: int, name: str, special_use: str | None, now: float
) -> Op[tuple[int, MailboxInfo] | None]:
    """A new empty folder (id, info), or None when the name is taken."""
    res = yield Query(
        "SELECT 1 FROM mailboxes WHERE account = ? AND name = ?", (account_id, name)
    )
    if res.rows:
        return None
    uidvalidity = yield from next_uidvalidity(account_id, now)
    res = yield Query(
        "INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq,"
        " special_use, subscribed) VALUES (?, ?, ?, 1, 1, ?, ?)"
        " ON CONFLICT (account, name) DO NOTHING RETURNING id",
        (account_id, name, uidvalidity, special_use, True),
    )
    if not res.rows:
        return None
    return int(res.rows[0][0]), MailboxInfo(name, uidvalidity, 1, 1, special_use, True)


def _account_id(address: str) -> Op[int]:
    res = yield Query("SELECT id FROM accounts WHERE address = ?", (address,))
    if not res.rows:
        raise NoSuchAccount(address)
    return int(res.rows[0][0])


def create_mailbox(address: str, name: str, special_use: str | None, now: float) -> Op[MailboxInfo]:
    account_id = yield from _account_id(address)
    made = yield from insert_mailbox(account_id, name, special_use, now)
    if made is None:
        raise MailboxExists(address, name)
    return made[1]


def list_mailboxes(address: str) -> Op[list[MailboxInfo]]:
    account_id = yield from _account_id(address)
    res = yield Query(
        f"SELECT {_MAILBOX} FROM mailboxes WHERE account = ? ORDER BY name <> ?, name",
        (account_id, INBOX),
    )
    return [_mailbox(row) for row in res.rows]


def _mailbox_id(address: str, mailbox: str) -> Op[int]:
    res = yield Query(
        "SELECT a.id, m.id FROM accounts a"
        " LEFT JOIN mailboxes m ON m.account = a.id AND m.name = ?"
        " WHERE a.address = ?",
        (mailbox, address),
    )
    if not res.rows:
        raise NoSuchAccount(address)
    if res.rows[0][1] is None:
        raise NoSuchMailbox(address, mailbox)
    return int(res.rows[0][1])


def deliver(
    address: str, mailbox: str, data: bytes, flags: tuple[str, ...], internaldate: float
) -> Op[int]:
    """Store one message; returns its UID. Locks the mailbox row, then the account row."""
    res = yield Query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
        " WHERE name = ? AND account = (SELECT id FROM accounts WHERE address = ?)"
        " RETURNING id, account, uidnext - 1, highestmodseq",
        (mailbox, address),
    )
    if not res.rows:
        yield from _mailbox_id(address, mailbox)  # raises NoSuchAccount / NoSuchMailbox
        raise StoreError(f"mailbox {mailbox!r} of {address} vanished during delivery")
    mailbox_id, account_id, uid, modseq = (int(v) for v in res.rows[0])
    size = len(data)
    res = yield Query(
        "UPDATE accounts SET used_bytes = used_bytes + ?"
        " WHERE id = ? AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes)"
        " RETURNING used_bytes",
        (size, account_id, size),
    )
    if not res.rows:
        res = yield Query(
            "SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?", (account_id,)
        )
        raise QuotaExceeded(address, int(res.rows[0][0]), int(res.rows[0][1]), size)
    yield from insert_message(mailbox_id, uid, modseq, internaldate, join_flags(flags), data)
    return uid


def insert_message(
    folder_id: int, uid: int, modseq: int, internaldate: float, flags: str, data: bytes
) -> Op[None]:
    """A new message row and its body (written once, in ``message_bodies``)."""
    res = yield Query("INSERT INTO message_bodies (body) VALUES (?) RETURNING id", (data,))
    yield Query(
        "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, flags, body_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (folder_id, uid, modseq, internaldate, len(data), flags, int(res.rows[0][0])),
    )


def deliver_many(items: Sequence[tuple[str, bytes]], internaldate: float) -> Op[list[int]]:
    """Several INBOX deliveries in one transaction, taken in address order (lock order)."""
    uids = [0] * len(items)
    for index in sorted(range(len(items)), key=lambda i: items[i][0]):
        address, data = items[index]
        uids[index] = yield from deliver(address, INBOX, data, (), internaldate)
    return uids


def list_messages(address: str, mailbox: str) -> Op[list[StoredMessage]]:
    mailbox_id = yield from _mailbox_id(address, mailbox)
    res = yield Query(
        "SELECT uid, modseq, internaldate, size, flags FROM messages"
        " WHERE mailbox_id = ? ORDER BY uid",
        (mailbox_id,),
    )
    return [
        StoredMessage(int(r[0]), int(r[1]), float(r[2]), int(r[3]), split_flags(str(r[4])))
        for r in res.rows
    ]


def fetch_message(address: str, mailbox: str, uid: int) -> Op[bytes | None]:
    mailbox_id = yield from _mailbox_id(address, mailbox)
    res = yield Query(
        "SELECT b.body FROM messages m JOIN message_bodies b ON b.id = m.body_id"
        " WHERE m.mailbox_id = ? AND m.uid = ?",
        (mailbox_id, uid),
    )
    return bytes(res.rows[0][0]) if res.rows else None


def count_messages(address: str, mailbox: str) -> Op[int]:
    mailbox_id = yield from _mailbox_id(address, mailbox)
    res = yield Query("SELECT count(*) FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    return int(res.rows[0][0])


def delete_message(address: str, mailbox: str, uid: int) -> Op[bool]:
    """Remove one message, give its bytes back to the quota, bump HIGHESTMODSEQ and leave
    a tombstone of the UID stamped with it."""
    mailbox_id = yield from _mailbox_id(address, mailbox)
    res = yield Query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq WHERE id = ?"
        " RETURNING highestmodseq, account",
        (mailbox_id,),
    )
    if not res.rows:
        raise NoSuchMailbox(address, mailbox)
    modseq, account_id = int(res.rows[0][0]) + 1, int(res.rows[0][1])
    res = yield Query(
        "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING size, body_id",
        (mailbox_id, uid),
    )
    if not res.rows:
        return False
    yield Query("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, mailbox_id))
    yield Query(
        "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
        (mailbox_id, uid, modseq),
    )
    yield from forget_messages(account_id, int(res.rows[0][0]), [int(res.rows[0][1])])
    return True


def release_bytes(account_id: int, size: int) -> Op[None]:
    """Give ``size`` bytes back to the account's quota (never below zero). Locks the
    account row even when ``size`` is 0."""
    yield Query(
        "UPDATE accounts SET used_bytes = CASE WHEN used_bytes > ? THEN used_bytes - ?"
        " ELSE 0 END WHERE id = ?",
        (size, size, account_id),
    )


BODY_BATCH = 400  # body ids per statement of forget_messages


def forget_messages(account_id: int, size: int, body_ids: Sequence[int]) -> Op[None]:
    """After deleting messages of an account: give their ``size`` bytes back to the quota
    (which locks the account row: see "Message bodies" above) and delete those of their
    bodies that no message references any more, in ascending id order."""
    yield from release_bytes(account_id, size)
    wanted = sorted(set(body_ids))
    for start in range(0, len(wanted), BODY_BATCH):
        chunk = tuple(wanted[start : start + BODY_BATCH])
        yield Query(
            "DELETE FROM message_bodies WHERE id IN (" + ", ".join("?" * len(chunk)) + ")"
            " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = message_bodies.id)",
            chunk,
        )
