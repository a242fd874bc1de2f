"""Schema creation and migrations on both engines, and picking the engine from the URL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.unit.store.store_helpers import raw_rows, sibling

from hayate.store import open_store
from hayate.store.base import StoreError
from hayate.store.postgres import PostgresStore
from hayate.store.schema import MIGRATIONS, latest_version
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore


async def test_migrate_is_idempotent(store: SqlStore) -> None:
    # The fixture already migrated once.
    assert await store.migrate() == []
    assert await store.schema_version() == latest_version()
    rows = await raw_rows(store, "SELECT version, description FROM schema_version")
    assert rows == [(m.version, m.description) for m in MIGRATIONS]
    tables = {"accounts", "aliases", "mailboxes", "messages", "suppressions", "soft_bounces",
              "events", "expunged", "mailbox_locks", "message_bodies"}
    for table in tables:
        assert (await raw_rows(store, f"SELECT count(*) FROM {table}"))[0][0] == 0


async def test_concurrent_migrations_apply_once(store: SqlStore) -> None:
    for table in ("mailbox_locks", "expunged", "events", "soft_bounces", "suppressions"):
        await raw_rows(store, f"DROP TABLE {table}")
    await raw_rows(store, "DROP TABLE messages")
    await raw_rows(store, "DROP TABLE message_bodies")
    await raw_rows(store, "DROP TABLE mailboxes")
    await raw_rows(store, "DROP TABLE aliases")
    await raw_rows(store, "DROP TABLE accounts")
    await raw_rows(store, "DELETE FROM schema_version")
    async with sibling(store) as other:
        results = await asyncio.gather(store.migrate(), other.migrate())
    assert sorted(results) == [[], [m.version for m in MIGRATIONS]]
    await store.add_account("amy@example.com", "pw")
    assert await store.deliver("amy@example.com", b"x") == 1


async def test_newer_schema_is_refused(store: SqlStore) -> None:
    await raw_rows(
        store,
        "INSERT INTO schema_version (version, description, applied) VALUES (?, ?, ?)",
        (latest_version() + 1, "from the future", 0.0),
    )
    with pytest.raises(StoreError, match="knows up to"):
        await store.migrate()


def test_open_store_picks_the_engine(tmp_path: Path) -> None:
    sqlite = open_store("sqlite", tmp_path / "h.db")
    assert isinstance(sqlite, SqliteStore) and sqlite.path == tmp_path / "h.db"
    pg = open_store("postgresql://postgres@127.0.0.1:5432/test", tmp_path / "h.db")
    assert isinstance(pg, PostgresStore)
    with pytest.raises(StoreError, match="unknown store url"):
        open_store("mysql://somewhere", tmp_path / "h.db")


async def test_open_store_sqlite_end_to_end(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path / "data" / "hayate.db") as store:
        assert await store.migrate() == [m.version for m in MIGRATIONS]
        assert await store.list_accounts() == []
    assert (tmp_path / "data" / "hayate.db").exists()


async def test_unreachable_postgresql_is_a_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=0.5)
    with pytest.raises(StoreError, match="cannot connect"):
        await store.create()
    await store.close()
