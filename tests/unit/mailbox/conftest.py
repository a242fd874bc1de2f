"""Fixtures for the mailbox service tests: a store on each engine, accounts, services.

``blank_store`` is an open store on SQLite (a fresh file) and on PostgreSQL when
HAYATE_TEST_PG holds a DSN (a fresh schema per test, dropped afterwards), not yet migrated;
``store`` is the same, migrated. ``amy`` is a :class:`StoreMailboxes` for an account
``amy@example.com`` made in it. Without HAYATE_TEST_PG the PostgreSQL cases are skipped
with a reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.clock import FakeClock, clock
from tests.unit.store.store_helpers import ENGINES, engine_store

from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlstore import SqlStore

__all__ = ["amy", "blank_store", "clock", "store"]

AMY = "amy@example.com"


@pytest.fixture(params=ENGINES)
async def blank_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[SqlStore]:
    async with engine_store(request.param, tmp_path, clock) as opened:
        yield opened


@pytest.fixture
async def store(blank_store: SqlStore) -> SqlStore:
    await blank_store.migrate()
    return blank_store


@pytest.fixture
async def amy(store: SqlStore) -> StoreMailboxes:
    await store.add_account(AMY, "pw")
    return StoreMailboxes(store, AMY)
