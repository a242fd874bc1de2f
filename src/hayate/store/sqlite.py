"""The SQLite engine of the store: one file, stdlib ``sqlite3``, WAL mode.

Durability: ``journal_mode=WAL`` and ``synchronous=FULL``, so a delivery whose ``deliver``
call returned survives a crash of the process or of the machine. ``foreign_keys=ON`` makes
deleting an account cascade to its mailboxes and messages.

Several processes (Hayate runs one worker per core) open the same file. Every write runs in
``BEGIN IMMEDIATE``, which takes the database's write lock up front (so a reader never has
to upgrade its lock and deadlock); a process that finds the lock taken waits for it up to
``busy_timeout`` (default 10 s) inside SQLite, then gets a StoreError. UIDs are allocated
under that lock, so two processes never hand out the same UID.

Threading: MODE is chosen by measurement (see the report of the store issue); the
connection is used by one thing at a time, guarded by an asyncio lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hayate.core.seams import Clock
from hayate.store import ops
from hayate.store.base import StoreError
from hayate.store.passwords import Passwords
from hayate.store.schema import SQLITE
from hayate.store.sqlstore import OpFactory, SqlStore


class SqliteStore(SqlStore):
    """The store in one SQLite file."""

    dialect = SQLITE

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        threaded: bool = False,
        passwords: Passwords | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(passwords, clock)
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.threaded = threaded
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._executor: ThreadPoolExecutor | None = None

    async def create(self) -> None:
        if self._conn is not None:
            return
        if self.threaded:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        try:
            self._conn = await self._call(self._connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # we issue BEGIN / COMMIT ourselves
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await self._call(conn.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._close_passwords()

    async def _call(self, fn: Callable[[], ops.T]) -> ops.T:
        if self._executor is None:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _run(self, op: OpFactory[ops.T], *, write: bool) -> ops.T:
        conn = self._conn
        if conn is None:
            raise StoreError("the store is not open (call create() first)")
        async with self._lock:
            try:
                return await self._call(lambda: _transact(conn, op(), write))
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite: {exc}") from exc


def _transact(conn: sqlite3.Connection, op: ops.Op[ops.T], write: bool) -> ops.T:
    """Drive ``op`` inside one transaction on ``conn``; roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        query = next(op)
        while True:
            cursor = conn.execute(query.sql, query.params)
            result = ops.Result(cursor.fetchall(), cursor.rowcount)
            query = op.send(result)
    except StopIteration as stop:
        try:
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        value: ops.T = stop.value
        return value
    except BaseException:
        _rollback(conn)
        raise
    finally:
        op.close()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
