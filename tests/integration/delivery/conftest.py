"""Fixtures for the remote delivery tests (the peers themselves live in ``peers.py``).

Every async test here runs twice: on asyncio's own loop and on uvloop (what production uses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from tests.integration.delivery.peers import DictResolver, PostfixPeer, start_postfix


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
def dns() -> DictResolver:
    return DictResolver()


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixPeer]:
    yield from start_postfix()
