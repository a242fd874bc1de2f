"""A ready queue's rate buckets, driven by a fake clock (no tasks, no I/O)."""

from __future__ import annotations

from hayate.queue.ready import PathLimits, ReadyQueue
from hayate.queue.streams import StreamOrder
from hayate.queue.throttle import local_limiter


def _queue(limits: PathLimits) -> ReadyQueue[object]:
    return ReadyQueue(
        source="default", site="mx:mx.example.org", provider=None, address=None, helo=None,
        limits=limits, raw_limits=None, governor=None,
        order=StreamOrder(("transactional", "bulk"), "transactional"),
        limiter_factory=local_limiter,
    )


def test_without_rates_a_path_never_waits() -> None:
    path = _queue(PathLimits(2, 10, 10))
    path.effective(0.0)
    for i in range(1000):
        assert path.message_delay(i / 1000) == 0.0
        path.take_message(i / 1000)
        assert path.connection_delay(0.0) == 0.0
        path.take_connection(0.0)


def test_hour_limit_binds_before_minute_limit() -> None:
    path = _queue(PathLimits(2, 10, 10, messages_per_minute=60, messages_per_hour=120))
    path.effective(0.0)
    passed = 0
    t = 0.0
    while t < 600.0:
        if path.message_delay(t) == 0.0:
            path.take_message(t)
            passed += 1
        t += 0.05
    assert 18 <= passed <= 22  # 120/h over ten minutes (plus a small burst), not 60/min
