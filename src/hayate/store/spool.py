"""The spool: messages in flight on this node, durable on local disk.

One SQLite database per worker process (``spool/shard-N.db``), so workers never contend for
a write lock. Two tables:

``messages``    one row per accepted message: envelope sender, arrival time, the raw bytes,
                its ``stream`` ("transactional", "bulk", ...; '' = the configured default),
                and ``held`` (an operator's hold, or the shunt state for mail that could not be
                processed — such mail is kept, never dropped).
``recipients``  one row per recipient still to deliver: its route (local or remote), the queue
                it belongs to (``destination``), attempts, ``next_attempt`` and the last reply.
                ``active`` marks rows the scheduler holds in memory (Postfix's active queue);
                on start every row is made inactive again, so nothing is lost by a crash.

Durability and speed: WAL with ``synchronous=FULL``; writes go through :class:`GroupCommitter`,
which runs every write that arrived while the previous commit was busy in one transaction —
many SMTP sessions share one fsync, and nobody waits for a timer. A 250 is only sent after the
commit that holds the message has returned.

The commit runs on the event loop thread: it is short (one fsync of the WAL), and a writer
thread would hand its result back only after the GIL switch interval (see shared/PEERS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("hayate.spool")

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id          TEXT PRIMARY KEY,
    sender      TEXT NOT NULL,
    arrival     REAL NOT NULL,
    size        INTEGER NOT NULL,
    smtputf8    INTEGER NOT NULL DEFAULT 0,
    body_8bit   INTEGER NOT NULL DEFAULT 0,
    envid       TEXT,
    ret         TEXT,
    origin      TEXT NOT NULL DEFAULT '',
    held        INTEGER NOT NULL DEFAULT 0,
    hold_reason TEXT,
    data        BLOB NOT NULL,
    stream      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS recipients (
    id           INTEGER PRIMARY KEY,
    msg_id       TEXT NOT NULL REFERENCES messages(id),
    address      TEXT NOT NULL,
    orig         TEXT,
    route        TEXT NOT NULL,
    destination  TEXT NOT NULL,
    nexthop      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    active       INTEGER NOT NULL DEFAULT 0,
    last_reply   TEXT
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients(active, next_attempt);
CREATE INDEX IF NOT EXISTS recipients_msg ON recipients(msg_id);
"""


@dataclass(frozen=True, slots=True)
class SpoolRecipient:
    """A recipient as written to the spool by ingest."""

    address: str
    route: str  # "local" | "remote"
    destination: str  # queue key: "local", a domain, or a transport nexthop
    nexthop: str | None = None
    orig: str | None = None  # the address as the client wrote it, before alias expansion


@dataclass(frozen=True, slots=True)
class SpoolMessage:
    """A new message as written to the spool by ingest."""

    id: str
    sender: str
    arrival: float
    data: bytes
    recipients: tuple[SpoolRecipient, ...]
    smtputf8: bool = False
    body_8bit: bool = False
    envid: str | None = None
    ret: str | None = None
    origin: str = ""  # "smtp 192.0.2.1", "submission user@x", "local"
    stream: str = ""  # message stream chosen at ingest; '' = the configured default


@dataclass(frozen=True, slots=True)
class RecipientRow:
    """A recipient as read back from the spool."""

    id: int
    msg_id: str
    address: str
    orig: str | None
    route: str
    destination: str
    nexthop: str | None
    attempts: int
    next_attempt: float
    last_reply: str | None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A message's envelope as read back from the spool (without its data)."""

    id: str
    sender: str
    arrival: float
    size: int
    smtputf8: bool
    body_8bit: bool
    envid: str | None
    ret: str | None
    origin: str
    held: bool
    hold_reason: str | None
    stream: str = ""


_MSG_COLS = (
    "id, sender, arrival, size, smtputf8, body_8bit, envid, ret, origin, held, hold_reason,"
    " stream"
)
# Every column of ``messages`` by name (adopting a shard must not depend on column order:
# a migrated table has ``stream`` last, a new one too, but say so explicitly).
_ALL_MSG_COLS = (
    "id, sender, arrival, size, smtputf8, body_8bit, envid, ret, origin, held, hold_reason,"
    " data, stream"
)
_RCPT_COLS = (
    "id, msg_id, address, orig, route, destination, nexthop, attempts, next_attempt, last_reply"
)


def _message_info(row: Any) -> MessageInfo:
    return MessageInfo(
        row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7], row[8],
        bool(row[9]), row[10], row[11],
    )


def _recipient_row(row: Any) -> RecipientRow:
    return RecipientRow(*row)


class QueueIdMaker:
    """Queue ids like ``18A3F2C5D9E01A7B``: microseconds, shard, sequence — sortable, unique."""

    def __init__(self, shard: int) -> None:
        self._shard = shard & 0xF
        self._seq = 0

    def __call__(self) -> str:
        self._seq = (self._seq + 1) & 0xFFF
        return f"{time.time_ns() // 1000:013X}{self._shard:X}{self._seq:03X}"


Operation = Callable[[sqlite3.Connection], object]


class GroupCommitter:
    """Runs write operations in shared transactions: one fsync for everything that queued.

    ``await committer.run(op)`` returns once the transaction holding ``op`` is durable.
    ``committer.run_nowait(op)`` queues a write whose durability nobody waits for (it still
    commits with the next batch).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: list[tuple[Operation, asyncio.Future[object] | None]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.operations = 0

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._flush()

    async def run(self, op: Operation) -> object:
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        if self._wakeup is not None:
            self._wakeup.set()
        else:  # not started: commit synchronously (CLI use)
            self._flush()
        return await fut

    def run_nowait(self, op: Operation) -> None:
        self._pending.append((op, None))
        if self._wakeup is not None:
            self._wakeup.set()
        else:
            self._flush()

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # Let every session that became ready in this loop iteration add its write.
            await asyncio.sleep(0)
            self._flush()

    def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            results: list[object] = []
            error: BaseException | None = None
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, _ in batch:
                    results.append(op(conn))
                conn.execute("COMMIT")
            except BaseException as exc:  # the whole batch failed: tell every waiter
                error = exc
                log.exception("spool commit failed")
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self.commits += 1
            self.operations += len(batch)
            for i, (_, fut) in enumerate(batch):
                if fut is None or fut.done():
                    continue
                if error is not None:
                    fut.set_exception(error if isinstance(error, Exception) else RuntimeError())
                else:
                    fut.set_result(results[i])


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back if the body raises (one-off operator writes)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) one spool shard with the durability settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.executescript(SCHEMA)
    _migrate(conn)
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a shard written by an older version up to date, in place."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "stream" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN stream TEXT NOT NULL DEFAULT ''")


def shard_paths(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("shard-*.db"), key=lambda p: int(p.stem.split("-")[1]))


class Spool:
    """One shard of the spool, used by one worker's ingest and scheduler (and by the CLI)."""

    def __init__(self, path: Path, shard: int = 0) -> None:
        self.path = path
        self.shard = shard
        self.conn = connect(path)
        self.committer = GroupCommitter(self.conn)
        self.new_id = QueueIdMaker(shard)

    def close(self) -> None:
        self.conn.close()

    # --- writes (through the group committer) -------------------------------------------

    async def store(self, msg: SpoolMessage, active: bool) -> list[int]:
        """Write a new message and its recipients; returns their row ids once durable."""
        ids = await self.committer.run(lambda c: self.insert(c, msg, active))
        assert isinstance(ids, list)
        return ids

    @staticmethod
    def insert(conn: sqlite3.Connection, msg: SpoolMessage, active: bool) -> list[int]:
        conn.execute(
            "INSERT INTO messages (id, sender, arrival, size, smtputf8, body_8bit, envid, ret,"
            " origin, data, stream) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                msg.id, msg.sender, msg.arrival, len(msg.data), int(msg.smtputf8),
                int(msg.body_8bit), msg.envid, msg.ret, msg.origin, msg.data, msg.stream,
            ),
        )
        ids = []
        flag = int(active)
        for r in msg.recipients:
            cur = conn.execute(
                "INSERT INTO recipients (msg_id, address, orig, route, destination, nexthop,"
                " next_attempt, active) VALUES (?,?,?,?,?,?,?,?)",
                (msg.id, r.address, r.orig, r.route, r.destination, r.nexthop, msg.arrival, flag),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def finish(self, recipient_ids: Iterable[int], msg_id: str) -> None:
        """Recipients are done (delivered or bounced): forget them, and the message if last."""
        ids = list(recipient_ids)

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM recipients WHERE id=?", [(i,) for i in ids])
            conn.execute(
                "DELETE FROM messages WHERE id=? AND NOT EXISTS"
                " (SELECT 1 FROM recipients WHERE msg_id=?)",
                (msg_id, msg_id),
            )

        self.committer.run_nowait(op)

    def defer(self, recipient_ids: Iterable[int], next_attempt: float, reply: str) -> None:
        """A temporary failure: back to the deferred state until ``next_attempt``."""
        rows = [(next_attempt, reply, i) for i in recipient_ids]
        self.committer.run_nowait(
            lambda c: c.executemany(
                "UPDATE recipients SET active=0, attempts=attempts+1, next_attempt=?,"
                " last_reply=? WHERE id=?",
                rows,
            )
        )

    def postpone(self, recipient_ids: Iterable[int], next_attempt: float, reply: str) -> None:
        """Back to the deferred state until ``next_attempt`` without counting an attempt
        (nothing was tried: a suspended path, a warm-up cap)."""
        rows = [(next_attempt, reply, i) for i in recipient_ids]
        self.committer.run_nowait(
            lambda c: c.executemany(
                "UPDATE recipients SET active=0, next_attempt=?, last_reply=? WHERE id=?", rows
            )
        )

    def hold_message(self, msg_id: str, reason: str) -> None:
        """Shunt: keep the message but take it out of delivery until an operator acts."""
        self.committer.run_nowait(
            lambda c: (
                c.execute("UPDATE messages SET held=1, hold_reason=? WHERE id=?", (reason, msg_id)),
                c.execute("UPDATE recipients SET active=0 WHERE msg_id=?", (msg_id,)),
            )
        )

    # --- reads (direct: they never wait for a lock in WAL mode) -------------------------

    def reset_active(self) -> int:
        """At start: whatever was in memory before a crash or stop is due for delivery again."""
        cur = self.conn.execute("UPDATE recipients SET active=0 WHERE active=1")
        return cur.rowcount

    def claim_due(self, now: float, limit: int) -> list[RecipientRow]:
        """Due recipients of messages not held, marked active; oldest first."""
        if limit <= 0:
            return []
        rows = self.conn.execute(
            f"SELECT r.{_RCPT_COLS.replace(', ', ', r.')} FROM recipients r"
            " JOIN messages m ON m.id = r.msg_id"
            " WHERE r.active=0 AND r.next_attempt<=? AND m.held=0"
            " ORDER BY r.next_attempt LIMIT ?",
            (now, limit),
        ).fetchall()
        if rows:
            ids = [(row[0],) for row in rows]
            self.committer.run_nowait(
                lambda c: c.executemany("UPDATE recipients SET active=1 WHERE id=?", ids)
            )
        return [_recipient_row(r) for r in rows]

    def next_due(self) -> float | None:
        row = self.conn.execute(
            "SELECT MIN(r.next_attempt) FROM recipients r JOIN messages m ON m.id=r.msg_id"
            " WHERE r.active=0 AND m.held=0"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def message(self, msg_id: str) -> MessageInfo | None:
        row = self.conn.execute(
            f"SELECT {_MSG_COLS} FROM messages WHERE id=?", (msg_id,)
        ).fetchone()
        return _message_info(row) if row else None

    def message_data(self, msg_id: str) -> bytes | None:
        row = self.conn.execute("SELECT data FROM messages WHERE id=?", (msg_id,)).fetchone()
        return bytes(row[0]) if row else None

    def recipients_of(self, msg_id: str) -> list[RecipientRow]:
        rows = self.conn.execute(
            f"SELECT {_RCPT_COLS} FROM recipients WHERE msg_id=? ORDER BY id", (msg_id,)
        ).fetchall()
        return [_recipient_row(r) for r in rows]

    def list_messages(self, limit: int = 1000) -> list[tuple[MessageInfo, list[RecipientRow]]]:
        msgs = self.conn.execute(
            f"SELECT {_MSG_COLS} FROM messages ORDER BY arrival LIMIT ?", (limit,)
        ).fetchall()
        return [(_message_info(m), self.recipients_of(str(m[0]))) for m in msgs]

    def counts(self) -> tuple[int, int]:
        """(messages, recipients) in this shard."""
        m = self.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        r = self.conn.execute("SELECT COUNT(*) FROM recipients").fetchone()[0]
        return int(m), int(r)

    # --- operator actions (synchronous; used by the CLI while the server runs) -----------

    def _admin(self, sql: str, params: tuple[object, ...]) -> int:
        with transaction(self.conn):
            count: int = self.conn.execute(sql, params).rowcount
        return count

    def retry_now(self, msg_id: str) -> int:
        return self._admin(
            "UPDATE recipients SET next_attempt=0 WHERE msg_id=? AND active=0", (msg_id,)
        )

    def set_held(self, msg_id: str, held: bool, reason: str | None = None) -> int:
        count = self._admin(
            "UPDATE messages SET held=?, hold_reason=? WHERE id=?",
            (int(held), reason if held else None, msg_id),
        )
        if not held and count:
            self.retry_now(msg_id)
        return count

    def delete(self, msg_id: str) -> int:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM recipients WHERE msg_id=?", (msg_id,))
            count: int = self.conn.execute("DELETE FROM messages WHERE id=?", (msg_id,)).rowcount
        return count


def open_all(spool_dir: Path) -> list[Spool]:
    """Every shard present (for the CLI's queue commands)."""
    return [Spool(p, int(p.stem.split("-")[1])) for p in shard_paths(spool_dir)]


def spool_path(spool_dir: Path, shard: int) -> Path:
    return spool_dir / f"shard-{shard}.db"


def adopt_shard(spool: Spool, orphan: Path) -> int:
    """Move every message of ``orphan`` (a shard no worker owns any more, after the worker
    count went down) into ``spool`` in one transaction, then remove the orphan's files."""
    connect(orphan).close()  # an orphan from an older version gets the current columns
    conn = spool.conn
    conn.execute("ATTACH DATABASE ? AS orphan", (str(orphan),))
    try:
        with transaction(conn):
            moved: int = conn.execute(
                f"INSERT OR IGNORE INTO messages ({_ALL_MSG_COLS})"
                f" SELECT {_ALL_MSG_COLS} FROM orphan.messages"
            ).rowcount
            conn.execute(
                "INSERT INTO recipients (msg_id, address, orig, route, destination, nexthop,"
                " attempts, next_attempt, active, last_reply) SELECT msg_id, address, orig,"
                " route, destination, nexthop, attempts, next_attempt, 0, last_reply"
                " FROM orphan.recipients"
            )
    finally:
        conn.execute("DETACH DATABASE orphan")
    for suffix in ("", "-wal", "-shm"):
        Path(str(orphan) + suffix).unlink(missing_ok=True)
    return moved
