"""Egress sources over real sockets: connections leave from 127.0.0.2 / 127.0.0.3 (Linux
routes all of 127/8 to lo) and Postfix's smtp-sink, dumping every transaction, shows the
client address and EHLO name it saw. A small driver plays the scheduler's part: choose a
source, hand the job to the agent, count it against the warm-up cap."""

from __future__ import annotations

import asyncio
import datetime
import socket
from collections import Counter
from pathlib import Path

import pytest
from tests.integration.delivery.peers import DictResolver
from tests.support.clock import FakeClock
from tests.support.sink import SinkMessage, SmtpSink, smtp_sink

from hayate.config import DeliveryConfig, parse_config
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.delivery.egress import Egress, EgressChoice
from hayate.delivery.remote import RemoteDeliveryAgent
from hayate.queue.warmup import WarmupTracker

pytestmark = pytest.mark.peer

FAST = {"connect_timeout": 3.0, "command_timeout": 3.0, "tls": "none"}
START = datetime.datetime(2025, 3, 1, 9, tzinfo=datetime.UTC).timestamp()
DAY = 86400.0

SOURCES = """
hostname = "mx.hayate.test"

[[egress.sources]]
name = "two"
address = "127.0.0.2"
helo = "two.hayate.test"

[[egress.sources]]
name = "three"
address = "127.0.0.3"
helo = "three.hayate.test"
{warmup}

[[egress.pools]]
name = "main"
sources = [{{ source = "two", weight = {w2} }}, {{ source = "three", weight = {w3} }}]

[[egress.pools]]
name = "new"
sources = [{{ source = "three" }}]

[egress]
default_pool = "main"
domain_pools = {{ "new.example" = "new" }}

[warmup]
schedules = {{ ramp = {{ daily = [3, 6] }} }}
"""

WARMUP = 'warmup = "ramp"\nwarmup_start = "2025-03-01"'


@pytest.fixture(autouse=True)
def _loopback_aliases() -> None:
    for address in ("127.0.0.2", "127.0.0.3"):
        try:
            with socket.socket() as s:
                s.bind((address, 0))
        except OSError as exc:
            pytest.skip(f"cannot bind {address} here: {exc}")


def setup(
    tmp_path: Path, *, w2: int = 1, w3: int = 1, warm: bool = False
) -> tuple[Egress, WarmupTracker]:
    text = SOURCES.format(w2=w2, w3=w3, warmup=WARMUP if warm else "")
    cfg = parse_config(text, tmp_path)
    tracker = WarmupTracker(cfg.warmup, cfg.egress.sources, tmp_path / "warmup.db", FakeClock(0))
    return Egress(cfg.egress, cfg.hostname, tracker), tracker


def make_agent(**settings: object) -> RemoteDeliveryAgent:
    config = DeliveryConfig.model_validate({**FAST, **settings})
    return RemoteDeliveryAgent(config, "mx.hayate.test", DictResolver())


def job(sink: SmtpSink, n: int, choice: EgressChoice | None = None, **extra: object) -> DeliveryJob:
    rcpts = extra.pop("recipients", (f"r{n}@example.net",))
    return DeliveryJob(
        f"Q{n}",
        "sender@example.org",
        rcpts,  # type: ignore[arg-type]
        f"Subject: {n}\r\n\r\nmessage {n}\r\n".encode(),
        sink.address,
        sink.address,
        source_ip=choice.address if choice else None,
        helo=choice.helo if choice else None,
        **extra,  # type: ignore[arg-type]
    )


async def drive(
    egress: Egress,
    agent: RemoteDeliveryAgent,
    sink: SmtpSink,
    count: int,
    *,
    domain: str = "example.org",
    provider: str | None = "gmail",
    now: float = START,
) -> tuple[Counter[str], int]:
    """Send up to ``count`` messages one by one; returns picks per source and how many had
    to wait for the next window."""
    picked: Counter[str] = Counter()
    waiting = 0
    for n in range(count):
        choice = egress.choose(domain, "transactional", provider, now)
        if not isinstance(choice, EgressChoice):
            waiting += 1
            continue
        egress.sent(choice.source, provider, 1, now)
        [r] = await agent.deliver(job(sink, n, choice))
        assert r.outcome is Outcome.DELIVERED, r
        picked[choice.source] += 1
    return picked, waiting


def seen(messages: list[SinkMessage]) -> Counter[tuple[str, str]]:
    return Counter((m.client_addr, m.helo) for m in messages)


def by_number(messages: list[SinkMessage]) -> dict[int, SinkMessage]:
    """The dumps keyed by the job number in their Subject (dump order is not send order)."""
    return {int(m.content.split(b"\n", 1)[0].split(b": ")[1]): m for m in messages}


async def test_each_source_leaves_from_its_address_with_its_helo(tmp_path: Path) -> None:
    egress, _ = setup(tmp_path)
    with smtp_sink(dump=True) as sink:
        agent = make_agent()
        picked, _ = await drive(egress, agent, sink, 4)
        [r] = await agent.deliver(job(sink, 99))  # no choice: the system's address, hostname
        await agent.close()
        messages = sink.wait_messages(5)
    assert r.outcome is Outcome.DELIVERED
    assert picked == {"two": 2, "three": 2}
    assert seen(messages) == {
        ("127.0.0.2", "two.hayate.test"): 2,
        ("127.0.0.3", "three.hayate.test"): 2,
        ("127.0.0.1", "mx.hayate.test"): 1,
    }


async def test_weighted_pool_splits_traffic_three_to_one(tmp_path: Path) -> None:
    egress, _ = setup(tmp_path, w2=3, w3=1)
    with smtp_sink(dump=True) as sink:
        agent = make_agent()
        picked, _ = await drive(egress, agent, sink, 40)
        await agent.close()
        messages = sink.wait_messages(40)
        counters = sink.wait_counters(sess=2)
    assert picked == {"two": 30, "three": 10}
    assert seen(messages) == {
        ("127.0.0.2", "two.hayate.test"): 30,
        ("127.0.0.3", "three.hayate.test"): 10,
    }
    assert counters["sess"] == 2  # one cached connection per source, reused throughout


async def test_warming_source_is_not_used_beyond_its_cap(tmp_path: Path) -> None:
    egress, tracker = setup(tmp_path, warm=True)
    with smtp_sink(dump=True) as sink:
        agent = make_agent()
        # Day 1: cap 3 per provider. The pool's other member takes the rest.
        await drive(egress, agent, sink, 20)
        # A pool of only the new address: its excess waits instead of being sent.
        only_new, waiting = await drive(
            egress, agent, sink, 5, domain="new.example", provider="outlook"
        )
        # Day 2: cap 6, counted again from zero.
        day2, _ = await drive(egress, agent, sink, 20, now=START + DAY)
        await agent.close()
        messages = sink.wait_messages(45 - waiting)
    tracker.close()
    assert only_new == {"three": 3} and waiting == 2
    assert day2 == {"three": 6, "two": 14}
    addrs = Counter(m.client_addr for m in messages)
    assert addrs == {"127.0.0.3": 3 + 3 + 6, "127.0.0.2": 17 + 14}


async def test_cached_connection_is_reused_only_for_the_same_source_and_helo(
    tmp_path: Path,
) -> None:
    two = EgressChoice("two", "127.0.0.2", "two.hayate.test")
    two_other_name = EgressChoice("two", "127.0.0.2", "other.hayate.test")
    three = EgressChoice("three", "127.0.0.3", "three.hayate.test")
    with smtp_sink(dump=True) as sink:
        agent = make_agent()
        for n, choice in enumerate([two, two, three, two, two_other_name, two_other_name]):
            [r] = await agent.deliver(job(sink, n, choice))
            assert r.outcome is Outcome.DELIVERED
        stats = agent.stats
        await agent.close()
        messages = sink.wait_messages(6)
    assert stats.connections_opened == 3  # two, three, two with the other name
    assert stats.connections_reused == 3
    ordered = by_number(messages)
    assert [(ordered[n].client_addr, ordered[n].helo) for n in range(6)] == [
        ("127.0.0.2", "two.hayate.test"),
        ("127.0.0.2", "two.hayate.test"),
        ("127.0.0.3", "three.hayate.test"),
        ("127.0.0.2", "two.hayate.test"),
        ("127.0.0.2", "other.hayate.test"),
        ("127.0.0.2", "other.hayate.test"),
    ]


async def test_job_limits_override_the_config(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink:
        agent = make_agent(messages_per_connection=1000, recipients_per_transaction=100)
        for n in range(6):
            [r] = await agent.deliver(job(sink, n, messages_per_connection=2))
            assert r.outcome is Outcome.DELIVERED
        rcpts = tuple(f"x{i}@example.net" for i in range(5))
        results = await agent.deliver(job(sink, 7, recipients=rcpts, recipients_per_transaction=2))
        await agent.close()
        messages = sink.wait_messages(9)
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 5
    assert agent.stats.connections_opened == 4  # 6 messages at 2 per connection, then 1
    last = [m for m in messages if m.content.startswith(b"Subject: 7\n")]
    assert sorted(len(m.recipients) for m in last) == [1, 2, 2]
    assert sorted(r for m in last for r in m.recipients) == list(rcpts)


async def test_an_address_that_is_not_local_defers(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        agent = make_agent()
        bad = EgressChoice("gone", "192.0.2.77", "gone.hayate.test")
        [r] = await agent.deliver(job(sink, 1, bad))
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.enhanced == "4.4.1"
    assert "Cannot assign requested address" in r.reply.text


async def test_mx_address_of_the_other_family_is_skipped(tmp_path: Path) -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx.example.net")
    with smtp_sink(dump=True) as sink:
        dns.addresses["mx.example.net"] = ["::1", "127.0.0.1"]
        agent = RemoteDeliveryAgent(
            DeliveryConfig.model_validate({**FAST, "port": sink.port}), "mx.hayate.test", dns
        )
        choice = EgressChoice("two", "127.0.0.2", "two.hayate.test")
        ipv4_job = DeliveryJob(
            "Q1",
            "s@example.org",
            ("r@example.net",),
            b"Subject: 1\r\n\r\nx\r\n",
            "example.net",
            source_ip=choice.address,
            helo=choice.helo,
        )
        [r] = await agent.deliver(ipv4_job)
        only_v6 = DeliveryJob(
            "Q2",
            "s@example.org",
            ("r@example.net",),
            b"Subject: 2\r\n\r\nx\r\n",
            "v6.example.net",
            source_ip=choice.address,
            helo=choice.helo,
        )
        dns.add_mx("v6.example.net", "mx6.example.net")
        dns.addresses["mx6.example.net"] = ["::1"]
        [r6] = await agent.deliver(only_v6)
        await agent.close()
        [msg] = sink.wait_messages(1)
    assert r.outcome is Outcome.DELIVERED and msg.client_addr == "127.0.0.2"
    assert r6.outcome is Outcome.DEFERRED
    assert "no route from source address 127.0.0.2" in r6.reply.text


async def test_jobs_chosen_together_do_not_overshoot_the_cap(tmp_path: Path) -> None:
    """Like the scheduler filling its ready queues: 20 choices before any result."""
    egress, tracker = setup(tmp_path, warm=True)
    with smtp_sink(dump=True) as sink:
        agent = make_agent(connections_per_destination=5)
        choices = [egress.choose("example.org", "bulk", "gmail", START) for _ in range(20)]
        jobs = [job(sink, n, c) for n, c in enumerate(choices) if isinstance(c, EgressChoice)]
        results = await asyncio.gather(*(agent.deliver(j) for j in jobs))
        for j, [r] in zip(jobs, results, strict=True):
            assert r.outcome is Outcome.DELIVERED
            source = "three" if j.source_ip == "127.0.0.3" else "two"
            egress.sent(source, "gmail", 1, START)
        await agent.close()
        messages = sink.wait_messages(20)
    tracker.close()
    assert Counter(m.client_addr for m in messages) == {"127.0.0.3": 3, "127.0.0.2": 17}
