"""A fake wall clock for tests: it moves only when the test moves it.

``FakeClock`` implements ``hayate.core.seams.Clock``. Read it with ``now()``, move it with
``advance(seconds)``, or set it outright through its ``t`` attribute. Conftests that want
the ``clock`` fixture (a fresh ``FakeClock()``) re-export it:
``from tests.support.clock import clock``.
"""

from __future__ import annotations

import pytest

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeClock:
    """Seconds since the epoch, starting at ``t`` (default :data:`START`)."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
