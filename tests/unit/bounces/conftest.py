"""Fixtures for these tests: ``clock`` (a FakeClock) and ``store`` (a migrated SQLite store
on that clock), from ``tests.support``."""

from tests.support.clock import clock
from tests.support.store import store

__all__ = ["clock", "store"]
