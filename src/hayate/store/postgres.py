"""The PostgreSQL engine of the store: psycopg 3 (async) through a psycopg_pool pool.

Each op of ``hayate.store.ops`` runs in one transaction on a pooled connection (autocommit
off only inside ``conn.transaction()``); the ``?`` placeholders of the shared SQL become
``%s``. Concurrency is PostgreSQL's: row locks taken in the order documented in ``ops``
(mailboxes, messages, accounts, message_bodies), so concurrent deliveries from any number
of nodes get distinct UIDs. ``migrate`` holds a transaction-level advisory lock so two
nodes starting at once do not both create the tables.

``schema`` (optional) sets ``search_path`` on every connection: the tables then live in
that schema (tests use a fresh one per test).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from hayate.core.seams import Clock
from hayate.store import ops
from hayate.store.base import StoreError
from hayate.store.passwords import Passwords
from hayate.store.schema import POSTGRESQL
from hayate.store.sqlstore import OpFactory, SqlStore

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@lru_cache(maxsize=256)
def _pg_sql(sql: str) -> str:
    """Turn the shared ``?`` placeholders into psycopg's ``%s``."""
    if "%" in sql:
        raise StoreError(f"a literal '%' in shared SQL is not supported: {sql!r}")
    return sql.replace("?", "%s")


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database shared by every node."""

    dialect = POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 10.0,
        passwords: Passwords | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(passwords, clock)
        if schema is not None and not _IDENTIFIER.match(schema):
            raise ValueError(f"not a plain SQL identifier: {schema!r}")
        self.url = url
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None

    async def create(self) -> None:
        if self._pool is not None:
            return
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.schema is not None:
            kwargs["options"] = f"-c search_path={self.schema}"
        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs=kwargs,
            timeout=self.connect_timeout,
            open=False,
            name="hayate-store",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        self._close_passwords()

    async def _run(self, op: OpFactory[ops.T], *, write: bool) -> ops.T:
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open (call create() first)")
        try:
            async with pool.connection() as conn, conn.transaction():
                return await _drive(conn, op())
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc


async def _drive(conn: psycopg.AsyncConnection[TupleRow], op: ops.Op[ops.T]) -> ops.T:
    try:
        query = next(op)
        while True:
            if query.many is not None:
                batch = conn.cursor()
                await batch.executemany(_pg_sql(query.sql), query.many)
                query = op.send(ops.Result([], batch.rowcount))
                continue
            cursor = await conn.execute(_pg_sql(query.sql), query.params)
            rows = await cursor.fetchall() if cursor.description is not None else []
            query = op.send(ops.Result(rows, cursor.rowcount))
    except StopIteration as stop:
        value: ops.T = stop.value
        return value
    finally:
        op.close()
