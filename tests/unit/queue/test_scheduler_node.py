"""Two schedulers (two "workers") sharing one node table: shaping's limits hold for both.

The schedulers run in one process and loop here, each with its own spool shard, like two
workers of ``hayate serve`` (the table behaves the same across processes: see
test_sharedtable.py; a real two-worker server is in tests/integration/shaping/). The agents
are scripted and share one meter, so the concurrency the "receiver" sees is counted for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.support.queue import Bounces, FakeClock, put

from hayate.config import DeliveryConfig, QueueConfig, StreamsConfig
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult
from hayate.core.seams import Clock, DeliveryJob, SystemClock
from hayate.core.sharedtable import SharedTable
from hayate.queue.nodelimits import node_limits
from hayate.queue.ready import limit_key
from hayate.queue.scheduler import Scheduler
from hayate.queue.shaping import Shaping, ShapingFile, parse_shaping
from hayate.store.spool import Spool

OK = SmtpReply(250, "2.0.0", "ok")
NEXTHOP = "sink.test:25"
SITE_KEY = limit_key("conn", "default", NEXTHOP)
DELIVERY = DeliveryConfig(idle_timeout=0.1)  # claims linger 0.625 s after their runner


class Meter:
    """What the receiver sees from every agent together."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.by_worker: dict[int, list[str]] = {0: [], 1: []}


class Agent:
    def __init__(self, meter: Meter, worker: int, delay: float) -> None:
        self.meter = meter
        self.worker = worker
        self.delay = delay

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        meter = self.meter
        meter.active += 1
        meter.peak = max(meter.peak, meter.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            meter.active -= 1
        meter.by_worker[self.worker].extend(job.recipients)
        return [DeliveryResult.from_reply(r, OK, "sink[127.0.0.1]:25") for r in job.recipients]


class Node:
    """Two schedulers on one table."""

    def __init__(self, tmp_path: Path, shaping_text: str, clock: Clock,
                 delay: float = 0.005) -> None:
        self.table = SharedTable(2)
        self.meter = Meter()
        self.clock = clock
        self.spools: list[Spool] = []
        self.scheds: list[Scheduler] = []
        for worker in (0, 1):
            spool = Spool(tmp_path / f"shard-{worker}.db", worker)
            limits = node_limits(self.table, worker)
            agent = Agent(self.meter, worker, delay)
            shaping = Shaping.from_files(ShapingFile(), parse_shaping(shaping_text), DELIVERY)
            self.spools.append(spool)
            self.scheds.append(Scheduler(
                spool=spool, agents={"remote": agent, "local": agent},
                queue_cfg=QueueConfig(min_backoff=60, scan_interval=0.02),
                delivery_cfg=DELIVERY, hostname="mx.test", send_bounce=Bounces(),
                clock=clock, shaping=shaping,
                streams_cfg=StreamsConfig(),
                limiter_factory=limits.limiter_factory,
                connection_slots=limits.connection_slots,
            ))

    async def start(self) -> None:
        for spool, sched in zip(self.spools, self.scheds, strict=True):
            spool.committer.start()
            await sched.start()

    async def stop(self) -> None:
        for spool, sched in zip(self.spools, self.scheds, strict=True):
            await sched.stop()
            await spool.committer.stop()
            spool.close()

    async def put(self, worker: int, rcpt: str, stream: str = "") -> None:
        clock = self.clock if isinstance(self.clock, FakeClock) else FakeClock(
            self.clock.now())
        await put(self.spools[worker], self.scheds[worker], clock, [rcpt], stream=stream,
                  nexthop=NEXTHOP)

    def delivered(self) -> int:
        return sum(s.stats.delivered for s in self.scheds)


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_two_workers_never_run_more_connections_than_the_limit(tmp_path: Path) -> None:
    node = Node(tmp_path, "[default]\nconnections = 2\nmessages_per_connection = 3\n",
                SystemClock())
    await node.start()
    try:
        for i in range(40):
            await node.put(i % 2, f"u{i}@example.net")
        await until(lambda: node.delivered() == 40)
        assert node.meter.peak <= 2, node.meter.peak
        assert node.meter.peak == 2  # the limit is used
        assert len(node.meter.by_worker[0]) == len(node.meter.by_worker[1]) == 20
        # The claims outlive the runners only for the linger time, then are given back.
        await until(lambda: node.table.held(SITE_KEY) == 0, 5.0)
    finally:
        await node.stop()
    assert node.table.held(SITE_KEY) == 0


async def test_a_waiting_workers_transactional_mail_does_not_wait_for_the_others_backlog(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path, "[default]\nconnections = 2\nmessages_per_connection = 2\n",
                SystemClock(), delay=0.01)
    await node.start()
    try:
        for i in range(1000):  # 5 s of sending at 2 connections
            await node.put(0, f"bulk{i}@example.net", stream="bulk")
        await until(lambda: node.scheds[0].stats.delivered >= 2)
        assert node.table.held_by(SITE_KEY, 0) == 2  # worker 0 has both connections
        await node.put(1, "urgent@example.net", stream="transactional")
        await until(lambda: "urgent@example.net" in node.meter.by_worker[1], 10.0)
        # Worker 0 gave one connection up when worker 1 wanted it (after the linger of
        # the session that may still have been open), long before its backlog was gone.
        assert node.scheds[0].stats.delivered < 1000
        assert node.meter.peak == 2
    finally:
        await node.stop()


async def test_a_rate_is_spent_once_by_both_workers(tmp_path: Path) -> None:
    clock = FakeClock()
    # 600/min: 10 a second, burst 10 (one second's worth)
    node = Node(tmp_path, "[default]\nconnections = 4\nmessages_per_minute = 600\n", clock)
    await node.start()
    try:
        for i in range(40):
            await node.put(i % 2, f"r{i}@example.net")
        await until(lambda: node.delivered() >= 10)
        await asyncio.sleep(0.3)  # the clock stands still: no token comes back
        assert node.delivered() == 10  # per-worker buckets would have let 20 through
        clock.advance(1.0)
        await until(lambda: node.delivered() >= 20)
        await asyncio.sleep(0.3)
        assert node.delivered() == 20
        for second in (3, 4):  # the bucket holds one second's worth at most
            clock.advance(1.0)
            await until(lambda s=second: node.delivered() >= 10 * s)
        assert node.delivered() == 40
    finally:
        await node.stop()
