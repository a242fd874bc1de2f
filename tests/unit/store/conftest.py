"""Fixtures for the store tests: an open, migrated store for each engine.

``store`` runs every test on SQLite (a fresh file) and on PostgreSQL when HAYATE_TEST_PG
holds a DSN (a fresh schema ``hayate_test_<random>`` per test, dropped afterwards); without
it the PostgreSQL cases are skipped with a reason. Passwords use cheap argon2id parameters
so that creating accounts is fast; tests about hashing cost build their own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from tests.support.clock import FakeClock, clock
from tests.support.store import fast_passwords
from tests.unit.store.store_helpers import ENGINES, PG_DSN

from hayate.store.postgres import PostgresStore
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore

__all__ = ["clock", "store"]


@pytest.fixture(params=ENGINES)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[SqlStore]:
    engine: str = request.param
    schema = ""
    opened: SqlStore
    if engine == "sqlite":
        opened = SqliteStore(tmp_path / "hayate.db", passwords=fast_passwords(), clock=clock)
    else:
        if not PG_DSN:
            pytest.skip("HAYATE_TEST_PG is not set: the PostgreSQL engine is not tested")
        schema = f"hayate_test_{secrets.token_hex(6)}"
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f"CREATE SCHEMA {schema}")
        opened = PostgresStore(PG_DSN, schema=schema, passwords=fast_passwords(), clock=clock)
    try:
        await opened.create()
        await opened.migrate()
        yield opened
    finally:
        await opened.close()
        if schema:
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
