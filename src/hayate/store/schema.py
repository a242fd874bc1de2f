"""The store's SQL schema as numbered migrations, and the two SQL dialects it is written for.

Tables (version 1):

- ``accounts(id, address UNIQUE, domain, password_hash, created, quota_bytes, used_bytes,
  disabled)``: ``address`` lower-cased; ``password_hash`` an argon2 PHC string.
- ``aliases(source, target, position)``: one row per target; ``source`` is an address or a
  catch-all ``@domain``; ``position`` keeps the targets' order.
- ``mailboxes(id, account, name, uidvalidity, uidnext, highestmodseq, special_use,
  subscribed)``: ``account`` references accounts(id) ON DELETE CASCADE; UNIQUE(account, name).
- ``messages(id, mailbox_id, uid, modseq, internaldate, size, flags, body)``: ``mailbox_id``
  references mailboxes(id) ON DELETE CASCADE; UNIQUE(mailbox_id, uid); ``flags`` space
  separated.
- ``schema_version(version, description, applied)``: one row per applied migration.

Tables (version 2, deliverability):

- ``suppressions(id, domain, address, reason, source, created, detail)``: UNIQUE(domain,
  address); ``domain`` is a sending domain or ``*`` (every sending domain); ``source`` is
  ``hard-bounce``, ``soft-bounces``, ``complaint`` or ``manual``; ``address`` lower-cased.
- ``soft_bounces(domain, address, time)``: one row per soft bounce still inside the window
  of the soft-bounce rule; rows of an address are removed when it is suppressed.
- ``events(id, time, kind, recipient, sender, queue_id, status, reply, relay, source, site,
  stream, attempts, bounce_kind, reason)``: one row per :class:`hayate.core.events.DeliveryEvent`
  (``recipient`` lower-cased); indexes on (recipient, time), (time) and (queue_id).

Version 3 (mailboxes served over IMAP and POP3):

- ``accounts.uidvalidity_last``: the last UIDVALIDITY given to a folder of the account, so
  a folder deleted and created again in the same second still gets a new one;
  ``accounts.folders_ready``: the default folders (INBOX, Drafts, Sent, Trash, Junk,
  Archive) were created (accounts made before version 3 get them on first use).
- ``mailboxes.recent_uid``: the lowest UID still \\Recent (RFC 3501): the first read-write
  SELECT claims everything from it on.
- ``expunged(mailbox_id, uid, modseq)``: a tombstone per expunged UID with the modseq of its
  expunge, for CONDSTORE/QRESYNC (``VANISHED``) and other sessions' EXPUNGE updates.
- ``mailbox_locks(account, holder, expires)``: the POP3 maildrop lock (RFC 1939), one row
  per locked account address, taken over once ``expires`` has passed.
- indexes ``messages (mailbox_id, modseq)`` (changes since a modseq),
  ``messages (mailbox_id, uid, modseq, internaldate, size, flags)`` (everything but the
  body: STATUS counts, UID lists and metadata scans read the index alone instead of rows
  that hold the bodies, 10x less I/O on SQLite) and ``mailboxes (special_use)`` (retention
  rules naming a special use).

Version 4 (message bodies in their own table, shared by copies):

- ``message_bodies(id, body)``: one row per stored body. ``messages.body_id`` references it
  (nullable only because SQLite cannot add a NOT NULL column without a default; every row
  has one) ``DEFERRABLE INITIALLY DEFERRED``, so a transaction may delete a body before the
  messages that cascade away with their folder; index ``messages_body (body_id)`` finds
  a body's references. The ``messages.body`` column is dropped (SQLite >= 3.35 rewrites the
  table once, PostgreSQL only marks it dropped). Why: SQLite rewrites a whole row (body
  overflow pages included) on every change, so flagging an 18 MB message wrote 36 MB of WAL;
  a message row is now ~60 bytes. COPY and MOVE make new rows pointing at the same body,
  and a body is deleted with its last reference (rules in ``hayate.store.ops``). A body is
  only ever shared by messages of one account. Bodies moved by the migration keep their
  message's id as their own (PostgreSQL's identity sequence is moved past them).

Version 5 (bounded expunge tombstones):

- ``mailboxes.vanished_floor``: tombstones with a modseq at or below it may have been
  pruned, so "expunged since modseq M" for M below the floor is answered from the folder's
  UIDs instead (UIDs are given out without gaps: every UID below UIDNEXT that is not in the
  folder is gone); ``mailboxes.tombstones``: how many ``expunged`` rows the folder has, kept
  up to date by every transaction that writes or prunes them, so an expunge learns whether
  to prune without counting (rules in ``hayate.store.mailbox_ops``).

A later issue adds a migration by appending to :data:`MIGRATIONS` (never edit an applied
one). Statements are written once with ``{pk}``, ``{int}``, ``{real}``, ``{blob}`` and
``{bool}`` standing for the column types that differ between SQLite and PostgreSQL, and
``?`` for parameters (the PostgreSQL engine turns them into ``%s``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    """Column types (and a migration lock) of one SQL engine."""

    name: str
    pk: str
    int: str
    real: str
    blob: str
    bool: str
    migrate_lock: str | None = None  # statement that serializes concurrent migrate() calls

    def render(self, statement: str) -> str:
        return statement.format(
            pk=self.pk, int=self.int, real=self.real, blob=self.blob, bool=self.bool
        )

    def statement(self, statement: str | PerDialect) -> str | None:
        """A migration statement as this engine runs it (None: nothing to run here)."""
        if isinstance(statement, PerDialect):
            chosen = statement.sqlite if self.name == "sqlite" else statement.postgresql
            return None if chosen is None else self.render(chosen)
        return self.render(statement)


@dataclass(frozen=True, slots=True)
class PerDialect:
    """A migration statement spelled differently on each engine; None skips that engine."""

    sqlite: str | None
    postgresql: str | None


SQLITE = Dialect(
    name="sqlite",
    pk="INTEGER PRIMARY KEY AUTOINCREMENT",  # AUTOINCREMENT: ids are never reused
    int="INTEGER",
    real="REAL",
    blob="BLOB",
    bool="INTEGER",
    migrate_lock=None,  # BEGIN IMMEDIATE already takes the database's write lock
)

POSTGRESQL = Dialect(
    name="postgresql",
    pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    int="BIGINT",
    real="DOUBLE PRECISION",
    blob="BYTEA",
    bool="BOOLEAN",
    # Arbitrary constant key ("hayate" in ASCII); held until the transaction ends.
    migrate_lock="SELECT pg_advisory_xact_lock(115563428245349)",
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str | PerDialect, ...]


VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied {real} NOT NULL)"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "accounts, aliases, mailboxes, messages",
        (
            """CREATE TABLE accounts (
                id {pk},
                address TEXT NOT NULL UNIQUE,
                domain TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created {real} NOT NULL,
                quota_bytes {int} NOT NULL DEFAULT 0,
                used_bytes {int} NOT NULL DEFAULT 0,
                disabled {bool} NOT NULL DEFAULT FALSE
            )""",
            "CREATE INDEX accounts_domain ON accounts (domain)",
            """CREATE TABLE aliases (
                source TEXT NOT NULL,
                target TEXT NOT NULL,
                position INTEGER NOT NULL,
                PRIMARY KEY (source, target)
            )""",
            """CREATE TABLE mailboxes (
                id {pk},
                account {int} NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                uidvalidity {int} NOT NULL,
                uidnext {int} NOT NULL DEFAULT 1,
                highestmodseq {int} NOT NULL DEFAULT 1,
                special_use TEXT,
                subscribed {bool} NOT NULL DEFAULT TRUE,
                UNIQUE (account, name)
            )""",
            """CREATE TABLE messages (
                id {pk},
                mailbox_id {int} NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
                uid {int} NOT NULL,
                modseq {int} NOT NULL,
                internaldate {real} NOT NULL,
                size {int} NOT NULL,
                flags TEXT NOT NULL DEFAULT '',
                body {blob} NOT NULL,
                UNIQUE (mailbox_id, uid)
            )""",
        ),
    ),
    Migration(
        2,
        "suppressions, soft_bounces, events",
        (
            """CREATE TABLE suppressions (
                id {pk},
                domain TEXT NOT NULL,
                address TEXT NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                source TEXT NOT NULL,
                created {real} NOT NULL,
                detail TEXT NOT NULL DEFAULT '',
                UNIQUE (domain, address)
            )""",
            "CREATE INDEX suppressions_address ON suppressions (address)",
            """CREATE TABLE soft_bounces (
                domain TEXT NOT NULL,
                address TEXT NOT NULL,
                time {real} NOT NULL
            )""",
            "CREATE INDEX soft_bounces_address ON soft_bounces (domain, address, time)",
            "CREATE INDEX soft_bounces_time ON soft_bounces (time)",
            """CREATE TABLE events (
                id {pk},
                time {real} NOT NULL,
                kind TEXT NOT NULL,
                recipient TEXT NOT NULL,
                sender TEXT NOT NULL DEFAULT '',
                queue_id TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL DEFAULT '',
                reply TEXT NOT NULL DEFAULT '',
                relay TEXT NOT NULL DEFAULT '',
                source TEXT NOT NULL DEFAULT '',
                site TEXT NOT NULL DEFAULT '',
                stream TEXT NOT NULL DEFAULT '',
                attempts {int} NOT NULL DEFAULT 0,
                bounce_kind TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX events_recipient_time ON events (recipient, time)",
            "CREATE INDEX events_time ON events (time)",
            "CREATE INDEX events_queue_id ON events (queue_id)",
        ),
    ),
    Migration(
        3,
        "mailbox service: tombstones, recent, uidvalidity counter, POP3 locks",
        (
            "ALTER TABLE accounts ADD COLUMN uidvalidity_last {int} NOT NULL DEFAULT 0",
            "ALTER TABLE accounts ADD COLUMN folders_ready {bool} NOT NULL DEFAULT FALSE",
            """UPDATE accounts SET uidvalidity_last = (
                SELECT coalesce(max(m.uidvalidity), 0) FROM mailboxes m
                WHERE m.account = accounts.id)""",
            "ALTER TABLE mailboxes ADD COLUMN recent_uid {int} NOT NULL DEFAULT 1",
            "CREATE INDEX mailboxes_special_use ON mailboxes (special_use)",
            "CREATE INDEX messages_modseq ON messages (mailbox_id, modseq)",
            """CREATE INDEX messages_meta
                ON messages (mailbox_id, uid, modseq, internaldate, size, flags)""",
            """CREATE TABLE expunged (
                mailbox_id {int} NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
                uid {int} NOT NULL,
                modseq {int} NOT NULL,
                PRIMARY KEY (mailbox_id, uid)
            )""",
            "CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq)",
            """CREATE TABLE mailbox_locks (
                account TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires {real} NOT NULL
            )""",
        ),
    ),
    Migration(
        4,
        "message bodies in their own table, shared by copies",
        (
            """CREATE TABLE message_bodies (
                id {pk},
                body {blob} NOT NULL
            )""",
            PerDialect(
                sqlite="INSERT INTO message_bodies (id, body) SELECT id, body FROM messages",
                postgresql="INSERT INTO message_bodies (id, body) OVERRIDING SYSTEM VALUE"
                " SELECT id, body FROM messages",
            ),
            # SQLite's AUTOINCREMENT counter already follows the largest id inserted.
            PerDialect(
                sqlite=None,
                postgresql="SELECT setval(pg_get_serial_sequence('message_bodies', 'id'),"
                " coalesce(max(id), 0) + 1, false) FROM message_bodies",
            ),
            # Dropped before body_id is filled in, so SQLite rewrites the rows without bodies.
            "ALTER TABLE messages DROP COLUMN body",
            """ALTER TABLE messages ADD COLUMN body_id {int}
                REFERENCES message_bodies (id) DEFERRABLE INITIALLY DEFERRED""",
            # The index before the UPDATE: PostgreSQL refuses CREATE INDEX on a table with
            # deferred foreign-key checks pending.
            "CREATE INDEX messages_body ON messages (body_id)",
            "UPDATE messages SET body_id = id",
        ),
    ),
    Migration(
        5,
        "bounded expunge tombstones: vanished floor and tombstone count",
        (
            "ALTER TABLE mailboxes ADD COLUMN vanished_floor {int} NOT NULL DEFAULT 0",
            "ALTER TABLE mailboxes ADD COLUMN tombstones {int} NOT NULL DEFAULT 0",
            """UPDATE mailboxes SET tombstones = (
                SELECT count(*) FROM expunged e WHERE e.mailbox_id = mailboxes.id)""",
        ),
    ),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version
