"""Fixtures for the store tests: an open, migrated store for each engine.

``store`` runs every test on SQLite (a fresh file) and on PostgreSQL when HAYATE_TEST_PG
holds a DSN (a fresh schema ``hayate_test_<random>`` per test, dropped afterwards); without
it the PostgreSQL cases are skipped with a reason. Passwords use cheap argon2id parameters
so that creating accounts is fast; tests about hashing cost build their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.clock import FakeClock, clock
from tests.unit.store.store_helpers import ENGINES, engine_store

from hayate.store.sqlstore import SqlStore

__all__ = ["clock", "store"]


@pytest.fixture(params=ENGINES)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[SqlStore]:
    async with engine_store(request.param, tmp_path, clock) as opened:
        await opened.migrate()
        yield opened
