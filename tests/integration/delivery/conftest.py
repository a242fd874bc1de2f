"""Fixtures for the remote delivery tests (the peers themselves live in ``peers.py``).

Every async test here runs twice: on asyncio's own loop and on uvloop (what production uses).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.delivery.peers import DictResolver, PostfixPeer, start_postfix
from tests.support.loops import pytest_asyncio_loop_factories  # noqa: F401 - pytest hook


@pytest.fixture
def dns() -> DictResolver:
    return DictResolver()


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixPeer]:
    yield from start_postfix()
