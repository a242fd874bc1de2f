"""Fixtures for the mailbox service tests: a store on each engine, accounts, services.

``blank_store`` is an open store on SQLite (a fresh file) and on PostgreSQL when
HAYATE_TEST_PG holds a DSN (a fresh schema per test, dropped afterwards), not yet migrated;
``store`` is the same, migrated. ``amy`` is a :class:`StoreMailboxes` for an account
``amy@example.com`` made in it. Without HAYATE_TEST_PG the PostgreSQL cases are skipped
with a reason.
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

from hayate.mailbox.service import StoreMailboxes
from hayate.store.postgres import PostgresStore
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore

__all__ = ["amy", "blank_store", "clock", "store"]

AMY = "amy@example.com"


@pytest.fixture(params=ENGINES)
async def blank_store(
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
        yield opened
    finally:
        await opened.close()
        if schema:
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def store(blank_store: SqlStore) -> SqlStore:
    await blank_store.migrate()
    return blank_store


@pytest.fixture
async def amy(store: SqlStore) -> StoreMailboxes:
    await store.add_account(AMY, "pw")
    return StoreMailboxes(store, AMY)
