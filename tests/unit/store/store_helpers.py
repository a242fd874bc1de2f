"""Helpers shared by the store tests: engines, a sibling connection, raw SQL access.

Imported by ``conftest.py`` and the test modules as ``tests.unit.store.store_helpers``.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.support.store import fast_passwords

from hayate.core.seams import Clock
from hayate.store.passwords import Passwords
from hayate.store.postgres import PostgresStore
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore

PG_DSN = os.environ.get("HAYATE_TEST_PG", "")
ENGINES = ["sqlite", "postgresql"]


@asynccontextmanager
async def engine_store(engine: str, folder: Path, clock: Clock) -> AsyncIterator[SqlStore]:
    """An open store on ``engine`` (not migrated): a fresh SQLite file in ``folder``, or a
    fresh PostgreSQL schema ``hayate_test_<random>`` dropped afterwards (the test is
    skipped with a reason when HAYATE_TEST_PG is not set)."""
    schema = ""
    opened: SqlStore
    if engine == "sqlite":
        opened = SqliteStore(folder / "hayate.db", passwords=fast_passwords(), clock=clock)
    else:
        if not PG_DSN:
            pytest.skip("HAYATE_TEST_PG is not set: the PostgreSQL engine is not tested")
        schema = f"hayate_test_{secrets.token_hex(6)}"
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f"CREATE SCHEMA {schema}")
        opened = PostgresStore(PG_DSN, schema=schema, passwords=fast_passwords(), clock=clock)
    try:
        await opened.create()
        yield opened
    finally:
        await opened.close()
        if schema:
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")


def sibling(store: SqlStore, passwords: Passwords | None = None) -> SqlStore:
    """A second, separately connected store on the same database (another worker or node)."""
    pw = passwords or fast_passwords()
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path, passwords=pw, clock=store.clock)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url, schema=store.schema, passwords=pw, clock=store.clock)


async def raw_rows(
    store: SqlStore, sql: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Run one query on the store's database behind its back (``?`` placeholders)."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            return conn.execute(sql, params).fetchall()
    assert isinstance(store, PostgresStore)
    async with await psycopg.AsyncConnection.connect(
        store.url, autocommit=True, options=f"-c search_path={store.schema}"
    ) as conn:
        cursor = await conn.execute(sql.replace("?", "%s"), params)
        return await cursor.fetchall() if cursor.description is not None else []
