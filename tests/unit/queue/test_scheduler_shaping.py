"""The scheduler's shaping features with scripted agents (our own seam) and a fake clock.

Streams, ready-queue limits, governor suspension, warm-up waits, suppression, VERP and
events. The real Shaping, Egress and WarmupTracker are used; the agent is scripted so that
every attempt (and its envelope) can be counted. Integration tests at a real receiver are
in tests/integration/shaping/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.support.queue import Bounces, FakeClock
from tests.support.queue import put as put_message
from tests.unit.queue.test_scheduler import OK

from hayate.config import (
    DeliveryConfig,
    EgressConfig,
    EgressSource,
    QueueConfig,
    StreamsConfig,
    WarmupConfig,
    WarmupSchedule,
)
from hayate.core.events import DeliveryEvent, EventKind
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult
from hayate.core.seams import DeliveryJob
from hayate.delivery.egress import Egress
from hayate.queue.scheduler import Scheduler
from hayate.queue.shaping import Shaping, ShapingFile, parse_shaping
from hayate.queue.warmup import WarmupTracker
from hayate.store.spool import Spool

BUSY = SmtpReply(421, "4.7.0", "Try again later, closing connection")
NO = SmtpReply(550, "5.1.1", "no such user")


class Agent:
    """Scripted remote agent that records jobs and measures concurrency."""

    def __init__(self, answer: Callable[[DeliveryJob, str], SmtpReply] | None = None,
                 delay: float = 0.0) -> None:
        self.answer = answer or (lambda j, r: OK)
        self.delay = delay
        self.jobs: list[DeliveryJob] = []
        self.active = 0
        self.peak = 0

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        self.jobs.append(job)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        return [DeliveryResult.from_reply(r, self.answer(job, r), "sink[127.0.0.1]:25")
                for r in job.recipients]


class Events:
    def __init__(self) -> None:
        self.seen: list[DeliveryEvent] = []

    def record(self, event: DeliveryEvent) -> None:
        self.seen.append(event)

    def kinds(self, recipient: str) -> list[EventKind]:
        return [e.kind for e in self.seen if e.recipient == recipient]


class Suppressions:
    def __init__(self, listed: set[str]) -> None:
        self.listed = listed
        self.failures: list[tuple[str, str, str, bool]] = []

    async def suppressed(self, sender_domain: str, recipients: Sequence[str]) -> set[str]:
        return {r for r in recipients if (sender_domain, r) in {("hayate.test", x)
                                                                 for x in self.listed}}

    def note_failure(self, sender_domain: str, recipient: str, status: str,
                     permanent: bool) -> None:
        self.failures.append((sender_domain, recipient, status, permanent))


class Verp:
    def for_recipient(self, queue_id: str, sender: str, recipient: str) -> str | None:
        if not sender or not recipient.startswith("v"):
            return None
        return f"b-{queue_id}-{recipient.split('@')[0]}@bounce.hayate.test"


def shaping(text: str = "", **delivery: object) -> Shaping:
    return Shaping.from_files(ShapingFile(), parse_shaping(text),
                              DeliveryConfig.model_validate(delivery))


def build(tmp_path: Path, agent: Agent, clock: FakeClock, **kw: object
          ) -> tuple[Spool, Scheduler, Bounces]:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()
    bounces = Bounces()
    qcfg = QueueConfig(min_backoff=60, max_backoff=600, lifetime=3600, scan_interval=0.02)
    args: dict[str, object] = {"shaping": shaping()}
    args.update(kw)
    sched = Scheduler(spool=spool, agents={"remote": agent, "local": agent}, queue_cfg=qcfg,
                      delivery_cfg=DeliveryConfig(), hostname="mx.test", send_bounce=bounces,
                      clock=clock, **args)  # type: ignore[arg-type]
    return spool, sched, bounces


async def put(spool: Spool, sched: Scheduler, clock: FakeClock, rcpts: list[str],
              stream: str = "", sender: str = "s@hayate.test", nexthop: bool = True) -> str:
    """A message to ``rcpts``, all through the transport nexthop "sink.test:25" unless
    ``nexthop`` is false."""
    return await put_message(spool, sched, clock, rcpts, sender, stream,
                             "sink.test:25" if nexthop else None)


async def settle_spool(spool: Spool) -> None:
    """Let the group committer write what the scheduler queued (run_nowait)."""
    for _ in range(3):
        await asyncio.sleep(0.01)


async def until(check: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_transactional_overtakes_a_bulk_backlog(tmp_path: Path) -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    class Gated(Agent):
        async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
            await gate.wait()
            return await super().deliver(job)

    agent = Gated()
    spool, sched, _ = build(tmp_path, agent, clock,
                            shaping=shaping("[default]\nconnections = 1\n"))
    await sched.start()
    for i in range(300):
        await put(spool, sched, clock, [f"bulk{i}@example.net"], stream="bulk")
    await put(spool, sched, clock, ["urgent@example.net"], stream="transactional")
    gate.set()  # 299 bulk jobs wait behind the one in flight
    await until(lambda: sched.stats.delivered == 301, 10)
    order = [j.recipients[0] for j in agent.jobs]
    assert order[:2] == ["bulk0@example.net", "urgent@example.net"]
    assert order[2:] == [f"bulk{i}@example.net" for i in range(1, 300)]
    assert agent.peak == 1
    await sched.stop()


async def test_connections_and_messages_per_connection(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent(delay=0.005)
    text = "[default]\nconnections = 3\nmessages_per_connection = 4\n"
    spool, sched, _ = build(tmp_path, agent, clock, shaping=shaping(text))
    await sched.start()
    for i in range(30):
        await put(spool, sched, clock, [f"u{i}@example.net"])
    await until(lambda: sched.stats.delivered == 30)
    assert agent.peak == 3
    assert {j.messages_per_connection for j in agent.jobs} == {4}
    path = sched.paths.get(("default", "sink.test:25"))
    assert path is None or path.sent_total == 30  # the idle path may be forgotten
    await sched.stop()


async def test_recipients_per_transaction_splits_jobs(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent()
    spool, sched, _ = build(tmp_path, agent, clock,
                            shaping=shaping("[default]\nrecipients_per_transaction = 2\n"))
    await sched.start()
    await put(spool, sched, clock, [f"r{i}@example.net" for i in range(5)])
    await until(lambda: sched.stats.delivered == 5)
    assert sorted(len(j.recipients) for j in agent.jobs) == [1, 2, 2]
    assert {j.recipients_per_transaction for j in agent.jobs} == {2}
    assert spool.counts() == (0, 0)
    await sched.stop()


RULE = """
[[automation]]
codes = ["421"]
match = "try again later"
action = "suspend"
duration = "10m"
"""


async def test_governor_suspends_the_path_and_it_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    busy = {"on": True}
    agent = Agent(lambda j, r: BUSY if busy["on"] else OK, delay=0.002)
    events = Events()
    spool, sched, _ = build(tmp_path, agent, clock, events=events,
                            shaping=shaping("[default]\nconnections = 1\n" + RULE))
    await sched.start()
    for i in range(10):
        await put(spool, sched, clock, [f"u{i}@example.net"])
    await until(lambda: sched.active == 0)
    await settle_spool(spool)
    assert len(agent.jobs) == 1  # one 421, then no connection for the other nine
    rows = [r for _, rs in spool.list_messages() for r in rs]
    assert len(rows) == 10
    tried = [r for r in rows if r.attempts == 1]
    waiting = [r for r in rows if r.attempts == 0]
    assert len(tried) == 1 and len(waiting) == 9  # postponed without counting an attempt
    assert all(r.next_attempt == clock.now() + 600 for r in waiting)
    assert all("suspended" in (r.last_reply or "") for r in waiting)
    [snap] = sched.sites_snapshot()
    assert snap["suspended_until"] == clock.now() + 600 and "try again later" in str(
        snap["reason"]).lower()
    # New mail for the suspended path waits too, without an attempt.
    await put(spool, sched, clock, ["late@example.net"])
    await until(lambda: sched.active == 0)
    assert len(agent.jobs) == 1 and events.kinds("late@example.net") == [EventKind.DEFERRED]
    busy["on"] = False
    clock.t += 601  # the suspension is over: everything goes
    await until(lambda: spool.counts() == (0, 0), 5)
    assert sched.stats.delivered == 11
    await sched.stop()


async def test_slow_down_halves_connections(tmp_path: Path) -> None:
    clock = FakeClock()
    replies = [SmtpReply(451, "4.7.0", "too many connections")]
    agent = Agent(lambda j, r: replies.pop() if replies else OK, delay=0.005)
    text = ("[default]\nconnections = 4\n[[automation]]\ncodes = [\"451\"]\n"
            "match = \"too many connections\"\naction = \"slow\"\nduration = \"1h\"\n"
            "factor = 0.5\n")
    spool, sched, _ = build(tmp_path, agent, clock, shaping=shaping(text))
    await sched.start()
    await put(spool, sched, clock, ["first@example.net"])
    await until(lambda: sched.active == 0)
    agent.peak = 0
    for i in range(40):
        await put(spool, sched, clock, [f"u{i}@example.net"])
    await until(lambda: sched.stats.delivered == 40)
    assert agent.peak == 2
    await sched.stop()


async def test_warmup_cap_postpones_to_the_next_window(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)  # 2023-11-14 22:13 UTC
    sources = [EgressSource(name="new", address="127.0.0.2", helo="new.hayate.test",
                            warmup="ramp", warmup_start="2023-11-14")]
    wcfg = WarmupConfig(schedules={"ramp": WarmupSchedule(daily=[3, 10])})
    tracker = WarmupTracker(wcfg, sources, tmp_path / "warmup.db", clock)
    egress = Egress(EgressConfig(sources=sources), "mx.test", tracker)
    agent = Agent()
    spool, sched, _ = build(tmp_path, agent, clock, egress=egress)
    await sched.start()
    for i in range(5):
        await put(spool, sched, clock, [f"u{i}@example.net"])
    await until(lambda: sched.active == 0)
    await settle_spool(spool)
    assert len(agent.jobs) == 3  # day 1: three
    assert {(j.source_ip, j.helo) for j in agent.jobs} == {("127.0.0.2", "new.hayate.test")}
    rows = [r for _, rs in spool.list_messages() for r in rs]
    assert len(rows) == 2 and {r.attempts for r in rows} == {0}
    midnight = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    assert {r.next_attempt for r in rows} == {midnight}
    clock.t = midnight + 1
    await until(lambda: spool.counts() == (0, 0), 5)
    assert len(agent.jobs) == 5
    await sched.stop()
    tracker.close()


async def test_suppressed_recipients_are_not_sent(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent()
    events = Events()
    listed = Suppressions({"gone@example.net"})
    spool, sched, bounces = build(tmp_path, agent, clock, events=events, suppression=listed)
    await sched.start()
    await put(spool, sched, clock, ["gone@example.net", "ok@example.net"])
    await until(lambda: spool.counts() == (0, 0))
    assert [j.recipients for j in agent.jobs] == [("ok@example.net",)]
    assert events.kinds("gone@example.net") == [EventKind.SUPPRESSED]
    assert events.kinds("ok@example.net") == [EventKind.DELIVERED]
    [(to, dsn)] = bounces.sent
    assert to == "s@hayate.test" and b"gone@example.net" in dsn and b"5.7.1" in dsn
    assert b"suppression list" in dsn
    await sched.stop()


async def test_suppressed_without_notice_is_just_removed(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent()
    spool, sched, bounces = build(tmp_path, agent, clock, notify_suppressed=False,
                                  suppression=Suppressions({"gone@example.net"}))
    await sched.start()
    await put(spool, sched, clock, ["gone@example.net"])
    await until(lambda: spool.counts() == (0, 0))
    assert agent.jobs == [] and bounces.sent == [] and sched.stats.suppressed == 1
    await sched.stop()


async def test_permanent_failure_is_noted_for_suppression(tmp_path: Path) -> None:
    clock = FakeClock()
    listed = Suppressions(set())
    agent = Agent(lambda j, r: NO)
    spool, sched, _ = build(tmp_path, agent, clock, suppression=listed)
    await sched.start()
    await put(spool, sched, clock, ["bad@example.net"])
    await until(lambda: spool.counts() == (0, 0))
    assert listed.failures == [("hayate.test", "bad@example.net", "5.1.1", True)]
    await sched.stop()


async def test_verp_recipients_get_their_own_transaction(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent()
    events = Events()
    spool, sched, _ = build(tmp_path, agent, clock, return_path=Verp(), events=events)
    await sched.start()
    qid = await put(spool, sched, clock, ["v1@example.net", "v2@example.net",
                                          "a@example.net", "b@example.net"])
    await until(lambda: spool.counts() == (0, 0))
    envelopes = sorted((j.sender, j.recipients) for j in agent.jobs)
    assert envelopes == [
        (f"b-{qid}-v1@bounce.hayate.test", ("v1@example.net",)),
        (f"b-{qid}-v2@bounce.hayate.test", ("v2@example.net",)),
        ("s@hayate.test", ("a@example.net", "b@example.net")),
    ]
    assert {e.sender for e in events.seen} == {"s@hayate.test"}  # the original sender
    await sched.stop()


async def test_one_event_per_recipient_and_outcome(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent(lambda j, r: {"a": OK, "b": NO}.get(r[0], SmtpReply(451, "4.2.0", "later")))
    events = Events()
    spool, sched, _ = build(tmp_path, agent, clock, events=events,
                            streams_cfg=StreamsConfig(default="bulk"))
    await sched.start()
    qid = await put(spool, sched, clock, ["a@example.net", "b@example.net", "c@example.net"])
    await until(lambda: sched.active == 0)
    by_rcpt = {e.recipient: e for e in events.seen}
    assert len(events.seen) == 3
    a, b, c = by_rcpt["a@example.net"], by_rcpt["b@example.net"], by_rcpt["c@example.net"]
    assert (a.kind, b.kind, c.kind) == (EventKind.DELIVERED, EventKind.BOUNCED,
                                         EventKind.DEFERRED)
    assert (b.status, b.reply) == ("5.1.1", "550 5.1.1 no such user")
    assert {(e.queue_id, e.sender, e.site, e.source, e.stream, e.attempts)
            for e in events.seen} == {(qid, "s@hayate.test", "sink.test:25", "default",
                                       "bulk", 1)}
    assert a.relay == "sink[127.0.0.1]:25"
    await sched.stop()


async def test_sites_snapshot_shows_queues_and_limits(tmp_path: Path) -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    class Held(Agent):
        async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
            await gate.wait()
            return await super().deliver(job)

    agent = Held()
    text = "[default]\nconnections = 2\nmessages_per_minute = 600\n"
    spool, sched, _ = build(tmp_path, agent, clock, shaping=shaping(text))
    await sched.start()
    for i in range(5):
        await put(spool, sched, clock, [f"b{i}@example.net"], stream="bulk")
    await put(spool, sched, clock, ["t@example.net"])
    await asyncio.sleep(0.05)
    [row] = sched.sites_snapshot()
    assert row["site"] == "sink.test:25" and row["source"] == "default"
    assert row["connections"] == 2
    assert row["queued"] == {"transactional": 1, "bulk": 3}
    limits = row["limits"]
    assert isinstance(limits, dict) and limits["messages_per_minute"] == 600
    assert row["suspended_until"] is None and row["warmup_remaining"] is None
    gate.set()
    await until(lambda: sched.stats.delivered == 6)
    await sched.stop()
