"""Rate limiters, driven by a fake clock: a minute-long run at N/min stays within 10%."""

from __future__ import annotations

import pytest

from hayate.queue.throttle import RateLimiter


def _greedy_run(limiter: RateLimiter, seconds: float, step: float) -> int:
    """Offer one message every ``step`` seconds; count what the limiter lets through."""
    passed = 0
    t = 0.0
    while t < seconds:
        if limiter.delay(t) == 0.0:
            limiter.take(t)
            passed += 1
        t += step
    return passed


def _waiting_run(limiter: RateLimiter, seconds: float) -> int:
    """A sender that always has mail and sleeps exactly as long as the limiter says."""
    passed = 0
    t = 0.0
    for _ in range(1_000_000):
        wait = limiter.delay(t)
        if wait > 0:
            t += wait
            continue
        if t >= seconds:
            break
        limiter.take(t)
        passed += 1
    return passed


@pytest.mark.parametrize("per_minute", [6, 60, 100, 600, 3000])
def test_minute_run_stays_within_ten_percent(per_minute: int) -> None:
    limiter = RateLimiter.per_minute(per_minute)
    passed = _greedy_run(limiter, 60.0, step=0.005)
    assert per_minute * 0.9 <= passed <= per_minute * 1.1


@pytest.mark.parametrize("per_minute", [10, 120, 1200])
def test_waiting_sender_gets_the_rate(per_minute: int) -> None:
    passed = _waiting_run(RateLimiter.per_minute(per_minute), 60.0)
    assert per_minute * 0.9 <= passed <= per_minute * 1.1


def test_hourly_rate_over_an_hour() -> None:
    limiter = RateLimiter.per_hour(1000)
    passed = _greedy_run(limiter, 3600.0, step=0.5)
    assert 900 <= passed <= 1100


def test_burst_lets_a_few_through_at_once_then_paces() -> None:
    limiter = RateLimiter(per_second=1.0, burst=5)
    for _ in range(5):
        assert limiter.delay(100.0) == 0.0
        limiter.take(100.0)
    assert limiter.delay(100.0) == pytest.approx(1.0)
    assert limiter.delay(100.5) == pytest.approx(0.5)
    assert limiter.delay(101.0) == 0.0


def test_taking_without_waiting_is_paid_back() -> None:
    limiter = RateLimiter(per_second=2.0)
    for _ in range(3):
        limiter.take(0.0)  # one token, then two of debt
    assert limiter.delay(0.0) == pytest.approx(1.5)


def test_waiting_the_delay_is_always_enough() -> None:
    limiter = RateLimiter(per_second=7.0)
    t = 12345.678
    for _ in range(1000):
        t += limiter.delay(t)
        assert limiter.delay(t) == 0.0
        limiter.take(t)


def test_set_rate_keeps_pacing() -> None:
    limiter = RateLimiter.per_minute(120)
    first = _greedy_run(limiter, 30.0, step=0.01)
    limiter.set_rate(1.0, 30.0)  # 60 per minute from now on
    passed = 0
    t = 30.0
    while t < 90.0:
        if limiter.delay(t) == 0.0:
            limiter.take(t)
            passed += 1
        t += 0.01
    assert 58 <= first <= 62
    assert 54 <= passed <= 66


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_bad_arguments(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
