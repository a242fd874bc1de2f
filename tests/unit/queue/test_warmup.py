"""WarmupTracker: daily caps per provider that ramp up, node-wide counts in SQLite.

Days are driven by a fake clock; two trackers on one file stand for two worker processes
(and one test runs a real second process).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.support.clock import FakeClock

from hayate.config import ConfigError, EgressSource, WarmupConfig, WarmupSchedule
from hayate.queue.warmup import WarmupTracker

UTC = datetime.UTC
DAY = 86400.0


def at(day: str, hour: int = 12) -> float:
    """Epoch seconds of ``day`` at ``hour``:00 UTC."""
    d = datetime.date.fromisoformat(day)
    return datetime.datetime(d.year, d.month, d.day, hour, tzinfo=UTC).timestamp()


def make(
    path: Path,
    *,
    daily: list[int] | None = None,
    start: str = "2025-03-01",
    timezone: str = "UTC",
    sync_interval: float = 1.0,
    clock: FakeClock | None = None,
) -> WarmupTracker:
    cfg = WarmupConfig(
        schedules={"ramp": WarmupSchedule(daily=daily or [10, 20, 40])},
        timezone=timezone,
        sync_interval=sync_interval,
    )
    sources = [
        EgressSource(name="new", address="127.0.0.3", warmup="ramp", warmup_start=start),
        EgressSource(name="old", address="127.0.0.2"),
    ]
    return WarmupTracker(cfg, sources, path / "warmup.db", clock or FakeClock(at(start)))


def test_caps_ramp_day_by_day_then_stop(tmp_path: Path) -> None:
    w = make(tmp_path)
    assert w.cap("new", "gmail", at("2025-02-28")) == 0  # before day 1: not in service
    assert w.day("new", at("2025-03-01")) == 1
    assert [w.cap("new", "gmail", at(f"2025-03-0{d}")) for d in (1, 2, 3)] == [10, 20, 40]
    assert w.cap("new", "gmail", at("2025-03-04")) is None  # after the last day: no cap
    assert w.remaining("new", "gmail", at("2025-03-04")) is None
    assert w.cap("old", "gmail", at("2025-03-01")) is None  # no schedule: never capped
    assert w.remaining("old", None, at("2025-03-01")) is None
    assert not w.warming("old") and w.warming("new")


def test_each_provider_has_its_own_cap_and_the_rest_share_other(tmp_path: Path) -> None:
    w = make(tmp_path)
    now = at("2025-03-01")
    w.consume("new", "gmail", 7, now)
    w.consume("new", None, 4, now)
    w.consume("new", None, 6, now)
    assert w.remaining("new", "gmail", now) == 3
    assert w.remaining("new", "outlook", now) == 10
    assert w.remaining("new", None, now) == 0  # every provider-less destination shares one
    assert w.used_by_provider("new", now) == {"gmail": 7, "other": 10}
    w.consume("new", "gmail", 5, now)
    assert w.remaining("new", "gmail", now) == 0  # never negative


def test_counts_start_again_each_day_in_the_configured_timezone(tmp_path: Path) -> None:
    # Tokyo is UTC+9: 15:00 UTC is already the next day there.
    w = make(tmp_path, timezone="Asia/Tokyo")
    before = at("2025-03-01", hour=14)  # 23:00 in Tokyo, day 1
    after = at("2025-03-01", hour=15)  # 00:00 in Tokyo, day 2
    w.consume("new", "gmail", 10, before)
    assert w.remaining("new", "gmail", before) == 0
    assert w.next_window(before) == after
    assert w.day("new", after) == 2
    assert w.remaining("new", "gmail", after) == 20
    assert w.next_window(after) == after + DAY


def test_counts_are_shared_by_workers_after_a_sync(tmp_path: Path) -> None:
    clock = FakeClock(at("2025-03-01"))
    a = make(tmp_path, clock=clock)
    b = make(tmp_path, clock=clock)
    now = clock.t
    assert a.remaining("new", "gmail", now) == 10
    assert b.remaining("new", "gmail", now) == 10
    a.consume("new", "gmail", 6, now)
    # Within the sync interval b does not know yet (the documented possible overshoot) ...
    assert b.remaining("new", "gmail", now + 0.5) == 10
    # ... once a has written its delta and b has read the totals back, it does.
    a.consume("new", "gmail", 1, now + 1.0)  # a syncs (writes 6), then counts 1 in memory
    assert b.remaining("new", "gmail", now + 1.0) == 4
    assert a.remaining("new", "gmail", now + 1.0) == 3  # its own pending one included
    a.close()
    b.close()
    c = make(tmp_path, clock=clock)  # a restart reads today's totals back
    assert c.remaining("new", "gmail", now + 2.0) == 3
    c.close()


def test_a_second_process_counts_against_the_same_cap(tmp_path: Path) -> None:
    start = at("2025-03-01")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from hayate.config import EgressSource, WarmupConfig, WarmupSchedule
        from hayate.queue.warmup import WarmupTracker

        class Clock:
            def now(self) -> float:
                return {start}

        cfg = WarmupConfig(schedules={{"ramp": WarmupSchedule(daily=[10])}})
        src = EgressSource(name="new", warmup="ramp", warmup_start="2025-03-01")
        w = WarmupTracker(cfg, [src], Path({str(tmp_path / "warmup.db")!r}), Clock())
        for _ in range(4):
            w.consume("new", "yahoo", 1, {start})
        w.close()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    w = make(tmp_path, daily=[10])
    assert w.remaining("new", "yahoo", start) == 6
    assert w.remaining("new", "gmail", start) == 10


def test_deltas_counted_late_in_a_day_stay_with_that_day(tmp_path: Path) -> None:
    a = make(tmp_path)
    late = at("2025-03-01", hour=23)
    a.consume("new", "gmail", 1, late)  # syncs first, then 1 pending
    a.consume("new", "gmail", 2, late + 0.1)  # 3 pending for day 1
    next_day = late + 3600.0
    assert a.remaining("new", "gmail", next_day) == 20  # day 2 starts at 0
    b = make(tmp_path)
    assert b.used("new", "gmail", late) == 3  # day 1 kept its 3


def test_unknown_schedule_is_a_config_error(tmp_path: Path) -> None:
    cfg = WarmupConfig(schedules={"ramp": WarmupSchedule(daily=[1])})
    src = EgressSource(name="x", warmup="fast", warmup_start="2025-03-01")
    with pytest.raises(ConfigError, match=r"source 'x': unknown warm-up schedule 'fast'"):
        WarmupTracker(cfg, [src], tmp_path / "w.db", FakeClock(0.0))


def test_no_warming_source_never_creates_the_file(tmp_path: Path) -> None:
    cfg = WarmupConfig()
    w = WarmupTracker(cfg, [EgressSource(name="a")], tmp_path / "w.db", FakeClock(0.0))
    w.consume("a", "gmail", 5, 0.0)
    assert w.remaining("a", "gmail", 0.0) is None
    w.close()
    assert not (tmp_path / "w.db").exists()
