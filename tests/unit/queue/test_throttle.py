"""Rate limiters, driven by a fake clock: a minute-long run at N/min stays within 10%."""

from __future__ import annotations

import pytest

from hayate.queue.shaping import Limits
from hayate.queue.throttle import PathThrottle, RateLimiter


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


def _limits(**rates: float | None) -> Limits:
    values: dict[str, float | None] = {
        "messages_per_minute": None,
        "messages_per_hour": None,
        "connections_per_minute": None,
    }
    values.update(rates)
    return Limits(
        connections=2, messages_per_connection=10, recipients_per_transaction=10, **values
    )


def test_path_throttle_without_rates_never_waits() -> None:
    throttle = PathThrottle(_limits())
    for i in range(1000):
        assert throttle.message_delay(float(i) / 1000) == 0.0
        throttle.take_message(float(i) / 1000)
        assert throttle.connection_delay(0.0) == 0.0
        throttle.take_connection(0.0)


def test_path_throttle_hour_limit_binds_before_minute_limit() -> None:
    throttle = PathThrottle(_limits(messages_per_minute=60, messages_per_hour=120))
    passed = 0
    t = 0.0
    while t < 600.0:
        if throttle.message_delay(t) == 0.0:
            throttle.take_message(t)
            passed += 1
        t += 0.05
    assert 18 <= passed <= 22  # 120/h over ten minutes, not 60/min


def test_path_throttle_connections_and_update() -> None:
    throttle = PathThrottle(_limits(connections_per_minute=6))
    throttle.take_connection(0.0)
    assert throttle.connection_delay(0.0) == pytest.approx(10.0)
    throttle.update(_limits(connections_per_minute=3), 0.0)  # a governor halved it
    assert throttle.connection_delay(0.0) == pytest.approx(20.0)
    throttle.update(_limits(), 0.0)  # unlimited again
    assert throttle.connection_delay(0.0) == 0.0
