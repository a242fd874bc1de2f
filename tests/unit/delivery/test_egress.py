"""Egress selection: pools by sending domain / stream / default, weighted round-robin,
warm-up caps (day by day with a fake clock), and the config errors an operator sees."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import pytest
from tests.support.clock import FakeClock

from hayate.config import ConfigError, EgressConfig, EgressSource, WarmupConfig, parse_config
from hayate.delivery.egress import HOLD_SECONDS, Egress, EgressChoice
from hayate.queue.warmup import WarmupTracker

START = datetime.datetime(2025, 3, 1, 9, tzinfo=datetime.UTC).timestamp()
DAY = 86400.0

CONFIG = """
hostname = "mx.example.test"

[[egress.sources]]
name = "a"
address = "192.0.2.1"
helo = "a.example.test"

[[egress.sources]]
name = "b"
address = "192.0.2.2"

[[egress.sources]]
name = "fresh"
address = "192.0.2.3"
helo = "fresh.example.test"
warmup = "ramp"
warmup_start = "2025-03-01"

[[egress.pools]]
name = "main"
sources = [{ source = "a", weight = 3 }, { source = "b" }]

[[egress.pools]]
name = "bulk"
sources = [{ source = "b" }]

[[egress.pools]]
name = "warming"
sources = [{ source = "a" }, { source = "fresh" }]

[[egress.pools]]
name = "only-fresh"
sources = [{ source = "fresh" }]

[egress]
default_pool = "main"
domain_pools = { "Example.COM" = "bulk", "shop.example.org" = "warming", "new.test" = "only-fresh" }
stream_pools = { bulk = "bulk" }

[warmup]
schedules = { ramp = { daily = [2, 4, 8] } }
"""


def egress(tmp_path: Path, text: str = CONFIG) -> tuple[Egress, WarmupTracker]:
    cfg = parse_config(text, tmp_path)
    tracker = WarmupTracker(
        cfg.warmup, cfg.egress.sources, tmp_path / "warmup.db", FakeClock(START)
    )
    return Egress(cfg.egress, cfg.hostname, tracker), tracker


def picks(e: Egress, n: int, domain: str = "x.test", stream: str = "transactional") -> list[str]:
    out = []
    for _ in range(n):
        choice = e.choose(domain, stream, "gmail", START)
        assert isinstance(choice, EgressChoice)
        out.append(choice.source)
    return out


def test_no_sources_means_the_systems_choice() -> None:
    e = Egress(EgressConfig(), "mx.example.test", None)
    assert e.choose("example.com", "bulk", None, 0.0) == EgressChoice("default", None, None)
    assert e.snapshot(0.0) == []


def test_weights_split_exactly_and_interleaved(tmp_path: Path) -> None:
    e, _ = egress(tmp_path)
    got = picks(e, 40)
    assert Counter(got) == {"a": 30, "b": 10}
    assert got[:4].count("b") == 1  # smooth: b's turns are spread out, not bunched at the end
    # 40 is a whole number of rounds: the next round again goes a, a, b, a
    seq = [e.choose("x.test", "transactional", None, START) for _ in range(4)]
    assert seq[0] == EgressChoice("a", "192.0.2.1", "a.example.test")
    assert seq[2] == EgressChoice("b", "192.0.2.2", "mx.example.test")  # helo: the hostname


def test_pool_by_domain_then_parent_then_stream_then_default(tmp_path: Path) -> None:
    e, _ = egress(tmp_path)
    assert set(picks(e, 4, domain="example.com")) == {"b"}
    assert set(picks(e, 4, domain="news.EXAMPLE.com")) == {"b"}  # parent domain
    assert set(picks(e, 4, domain="other.test", stream="bulk")) == {"b"}
    assert set(picks(e, 8, domain="other.test")) == {"a", "b"}  # default pool "main"
    assert e.pool_for("deep.shop.example.org", "bulk") == "warming"  # domain beats stream
    assert e.pool_for("example.org", "bulk") == "bulk"


def test_warming_source_ramps_day_by_day_and_the_pool_takes_the_excess(tmp_path: Path) -> None:
    e, tracker = egress(tmp_path)
    for day, cap in enumerate([2, 4, 8, None]):
        now = START + day * DAY
        counts: Counter[str] = Counter()
        for _ in range(40):
            choice = e.choose("shop.example.org", "transactional", "gmail", now)
            assert isinstance(choice, EgressChoice)
            counts[choice.source] += 1
            e.sent(choice.source, "gmail", 1, now)
        expected_fresh = 20 if cap is None else cap  # weights 1:1 once uncapped
        assert counts == {"fresh": expected_fresh, "a": 40 - expected_fresh}, day
        # another provider still has its own allowance on the same day
        other = e.choose("shop.example.org", "transactional", "outlook", now)
        other2 = e.choose("shop.example.org", "transactional", "outlook", now)
        assert {c.source for c in (other, other2) if isinstance(c, EgressChoice)} == {"a", "fresh"}
    tracker.close()


def test_excess_waits_for_the_next_window_when_no_member_has_allowance(tmp_path: Path) -> None:
    e, tracker = egress(tmp_path)
    sent = 0
    for _ in range(10):
        choice = e.choose("new.test", "transactional", "gmail", START)
        if not isinstance(choice, EgressChoice):
            break
        assert choice == EgressChoice("fresh", "192.0.2.3", "fresh.example.test")
        e.sent(choice.source, "gmail", 1, START)
        sent += 1
    assert sent == 2
    tomorrow = datetime.datetime(2025, 3, 2, tzinfo=datetime.UTC).timestamp()
    assert choice == tomorrow
    assert isinstance(e.choose("new.test", "transactional", "gmail", tomorrow), EgressChoice)
    snap = {s["source"]: s for s in e.snapshot(START)}
    assert snap["fresh"]["day"] == 1 and snap["fresh"]["cap"] == 2
    assert snap["fresh"]["used"] == {"gmail": 2}
    assert snap["fresh"]["pools"] == ["warming", "only-fresh"]
    assert snap["a"]["cap"] is None and snap["a"]["helo"] == "a.example.test"
    tracker.close()


def test_without_pools_every_source_is_used_round_robin(tmp_path: Path) -> None:
    text = """
[[egress.sources]]
name = "x"
address = "127.0.0.2"
[[egress.sources]]
name = "y"
address = "127.0.0.3"
helo = "y.test"
"""
    cfg = parse_config(text, tmp_path)
    e = Egress(cfg.egress, "h.test", None)
    assert picks(e, 4) == ["x", "y", "x", "y"]
    assert e.choose("d", "s", None, 0.0) == EgressChoice("x", "127.0.0.2", "h.test")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[egress.sources]]\nname = "a"\naddress = "300.1.1.1"\n', "not an IP address"),
        (
            '[[egress.sources]]\nname = "a"\nwarmup = "r"\nwarmup_start = "2025-13-01"\n',
            "expected a date 'YYYY-MM-DD'",
        ),
        ('[[egress.sources]]\nname = "a"\nwarmup = "r"\n', "warmup needs warmup_start"),
        (
            '[[egress.sources]]\nname = "a"\n[[egress.pools]]\nname = "p"\n'
            'sources = [{ source = "zz" }]\n',
            "pool 'p' names an unknown source 'zz'",
        ),
        (
            '[[egress.sources]]\nname = "a"\n[[egress.pools]]\nname = "p"\n'
            'sources = [{ source = "a", weight = 0 }]\n',
            "weight must be at least 1",
        ),
        ('[[egress.sources]]\nname = "a"\n[egress]\ndefault_pool = "nope"\n', "unknown pool"),
        ('[[egress.sources]]\nname = "a"\n[[egress.sources]]\nname = "a"\n', "used twice"),
        ('[warmup]\ntimezone = "Mars/Olympus"\n', "unknown time zone"),
        ("[warmup]\nschedules = { r = { daily = [] } }\n", "at least one day"),
    ],
)
def test_config_mistakes_are_readable(tmp_path: Path, snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(snippet, tmp_path)
    assert "egress" in str(info.value) or "warmup" in str(info.value)


def test_unknown_schedule_name_is_reported_at_load_and_by_the_tracker(tmp_path: Path) -> None:
    text = '[[egress.sources]]\nname = "a"\nwarmup = "fast"\nwarmup_start = "2025-03-01"\n'
    with pytest.raises(ConfigError, match="unknown warm-up schedule 'fast'"):
        parse_config(text, tmp_path)
    source = EgressSource(name="a", warmup="fast", warmup_start="2025-03-01")
    with pytest.raises(ConfigError, match="unknown warm-up schedule 'fast'"):
        WarmupTracker(WarmupConfig(), [source], tmp_path / "w.db", FakeClock(START))


def test_jobs_in_flight_hold_allowance_until_settled(tmp_path: Path) -> None:
    e, tracker = egress(tmp_path)
    # Cap 2: two jobs chosen but not reported yet already use it up.
    first = e.choose("new.test", "transactional", "gmail", START)
    second = e.choose("new.test", "transactional", "gmail", START)
    assert isinstance(first, EgressChoice) and isinstance(second, EgressChoice)
    assert isinstance(e.choose("new.test", "transactional", "gmail", START), float)
    assert e.remaining("fresh", "gmail", START) == 0
    assert e.snapshot(START)[2]["in_flight"] == {"gmail": 2}
    e.release("fresh", "gmail", START)  # the first attempt was deferred: nothing sent
    third = e.choose("new.test", "transactional", "gmail", START)
    assert isinstance(third, EgressChoice)
    e.sent("fresh", "gmail", 1, START)  # settles one hold and counts one
    assert e.remaining("fresh", "gmail", START) == 0  # 1 sent + 1 still in flight
    # A hold nobody settles lapses after HOLD_SECONDS.
    later = START + HOLD_SECONDS + 1
    assert e.remaining("fresh", "gmail", later) == 1
    assert isinstance(e.choose("new.test", "transactional", "gmail", later), EgressChoice)
    # Uncapped sources are never held.
    for _ in range(5):
        e.choose("x.test", "transactional", "gmail", START)
    assert e.remaining("a", "gmail", START) is None
    tracker.close()
