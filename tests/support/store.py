"""An embedded store for tests outside the store package: a migrated SQLite file.

``sqlite_store(path, clock)`` opens, creates and migrates a ``SqliteStore`` with cheap
argon2 parameters (``fast_passwords``) and closes it afterwards. The ``store`` fixture is
one in ``tmp_path`` on the ``clock`` fixture; a conftest that wants it re-exports both:
``from tests.support.clock import clock`` and ``from tests.support.store import store``.
(The store package's own tests run every engine: see ``tests/unit/store/conftest.py``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from tests.support.clock import FakeClock

from hayate.core.seams import Clock
from hayate.store.passwords import Passwords
from hayate.store.sqlite import SqliteStore


def fast_passwords() -> Passwords:
    """argon2id at its cheapest: for tests that create accounts, not for tests of hashing."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@asynccontextmanager
async def sqlite_store(path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(path, passwords=fast_passwords(), clock=clock)
    await opened.create()
    try:
        await opened.migrate()
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    async with sqlite_store(tmp_path / "hayate.db", clock) as opened:
        yield opened
