"""Failure counting in a sliding window."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock

from hayate.http.ratelimit import FailureLimiter


def test_a_key_is_blocked_after_max_failures_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(3, 60.0, clock)
    for _ in range(2):
        limiter.note_failure("a")
        clock.advance(10)
    assert limiter.retry_after("a") == 0
    limiter.note_failure("a")  # third failure at t+20; the first was at t+0
    assert limiter.retry_after("a") == pytest.approx(40.0)
    assert limiter.retry_after("b") == 0
    clock.advance(40)
    assert limiter.retry_after("a") == 0


def test_reset_forgets_and_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(1, 60.0, clock, max_keys=3)
    limiter.note_failure("a")
    assert limiter.retry_after("a") > 0
    limiter.reset("a")
    assert limiter.retry_after("a") == 0
    for key in ("k1", "k2", "k3", "k4"):
        limiter.note_failure(key)
    assert limiter.retry_after("k1") == 0  # dropped: the least recently failed
    assert all(limiter.retry_after(k) > 0 for k in ("k2", "k3", "k4"))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(0, 60.0, FakeClock())
