"""Fixtures for the shaping tests: the ``slow`` marker (the one minute-long rate test)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: runs for about a minute (deselect with -m 'not slow')"
    )
