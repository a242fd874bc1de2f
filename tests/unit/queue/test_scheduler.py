"""The scheduler with scripted delivery agents (our own seam) and a fake clock.

Real delivery over SMTP is covered by the integration tests; here the point is what the
queue does with each kind of result: delete, back off, expire, bounce once, hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.queue import Bounces, FakeClock, put

from hayate.config import DeliveryConfig, QueueConfig
from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult
from hayate.core.seams import DeliveryJob
from hayate.queue.scheduler import Scheduler
from hayate.store.spool import Spool


class ScriptedAgent:
    """Answers each recipient with ``answer(job, rcpt)``; records the jobs it saw."""

    def __init__(self, answer: Callable[[DeliveryJob, str], SmtpReply], remote: bool = True):
        self.answer = answer
        self.remote = remote
        self.jobs: list[DeliveryJob] = []

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        self.jobs.append(job)
        await asyncio.sleep(0)
        return [
            DeliveryResult.from_reply(r, self.answer(job, r), "sink[127.0.0.1]:25", self.remote)
            for r in job.recipients
        ]


OK = SmtpReply(250, "2.0.0", "Ok")
LATER = SmtpReply(451, "4.3.0", "try later")
NO = SmtpReply(550, "5.1.1", "no such user")


def build(tmp_path: Path, agent: ScriptedAgent, clock: FakeClock, bounces: Bounces,
          **queue: float) -> tuple[Spool, Scheduler]:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()
    qcfg = QueueConfig(min_backoff=60, max_backoff=600, lifetime=3600, scan_interval=0.05,
                       **queue)  # type: ignore[arg-type]
    sched = Scheduler(spool=spool, agents={"remote": agent, "local": agent}, queue_cfg=qcfg,
                      delivery_cfg=DeliveryConfig(), hostname="mx.test", send_bounce=bounces,
                      clock=clock)
    return spool, sched


async def settle(sched: Scheduler) -> None:
    for _ in range(50):
        await asyncio.sleep(0.01)
        if sched.active == 0 and not sched._tasks:
            break
    await asyncio.sleep(0.02)


async def test_delivered_mail_leaves_the_spool(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    agent = ScriptedAgent(lambda j, r: OK)
    spool, sched = build(tmp_path, agent, clock, bounces)
    await sched.start()
    for i in range(20):
        await put(spool, sched, clock, [f"a{i}@example.net", f"b{i}@example.org"])
    await settle(sched)
    assert sched.stats.delivered == 40
    assert spool.counts() == (0, 0)
    assert {len(j.recipients) for j in agent.jobs} == {1}  # one job per destination
    assert bounces.sent == []
    await sched.stop()


async def test_deferred_then_delivered_after_backoff(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    replies = [LATER, OK]
    agent = ScriptedAgent(lambda j, r: replies.pop(0))
    spool, sched = build(tmp_path, agent, clock, bounces)
    await sched.start()
    await put(spool, sched, clock, ["a@example.net"])
    await settle(sched)
    assert sched.stats.deferred == 1 and spool.counts() == (1, 1)
    (_msg, (row,)), = spool.list_messages()
    assert row.attempts == 1 and row.next_attempt == clock.now() + 60
    assert "451 4.3.0 try later" in (row.last_reply or "")
    clock.t += 30
    await asyncio.sleep(0.15)
    assert len(agent.jobs) == 1  # not due yet
    clock.t += 31
    await asyncio.sleep(0.15)
    await settle(sched)
    assert sched.stats.delivered == 1 and spool.counts() == (0, 0)
    await sched.stop()


async def test_permanent_failure_sends_one_dsn_for_the_message(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    agent = ScriptedAgent(lambda j, r: NO if r.startswith("bad") else OK)
    spool, sched = build(tmp_path, agent, clock, bounces)
    await sched.start()
    await put(spool, sched, clock, ["bad1@example.net", "good@example.net", "bad2@example.org"])
    await settle(sched)
    assert sched.stats.bounced == 2 and sched.stats.delivered == 1
    assert len(bounces.sent) == 1
    rcpt, dsn = bounces.sent[0]
    assert rcpt == "s@hayate.test"
    assert b"bad1@example.net" in dsn and b"bad2@example.org" in dsn
    assert b"550 5.1.1 no such user" in dsn
    assert b"Final-Recipient: rfc822; good@example.net" not in dsn
    assert spool.counts() == (0, 0)
    await sched.stop()


async def test_no_dsn_for_null_sender(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    spool, sched = build(tmp_path, ScriptedAgent(lambda j, r: NO), clock, bounces)
    await sched.start()
    await put(spool, sched, clock, ["bad@example.net"], sender="")
    await settle(sched)
    assert sched.stats.bounced == 1 and bounces.sent == []
    assert spool.counts() == (0, 0)
    await sched.stop()


async def test_expiry_bounces_with_the_last_error(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    spool, sched = build(tmp_path, ScriptedAgent(lambda j, r: LATER), clock, bounces)
    await sched.start()
    await put(spool, sched, clock, ["slow@example.net"])
    await settle(sched)
    for _ in range(10):  # retries until the lifetime (3600 s) is over
        clock.t += 600
        await asyncio.sleep(0.12)
        await settle(sched)
        if bounces.sent:
            break
    assert len(bounces.sent) == 1
    dsn = bounces.sent[0][1]
    assert b"expired" in dsn and b"try later" in dsn
    assert b"Subject: t" in dsn  # the original headers come along
    assert spool.counts() == (0, 0)
    await sched.stop()


async def test_unreachable_destination_is_suspended(tmp_path: Path) -> None:
    clock, bounces = FakeClock(), Bounces()
    refused = SmtpReply(451, "4.4.1", "connection refused")
    agent = ScriptedAgent(lambda j, r: refused, remote=False)
    spool, sched = build(tmp_path, agent, clock, bounces)
    sched.dcfg = DeliveryConfig(connections_per_destination=1)
    await sched.start()
    for i in range(10):
        await put(spool, sched, clock, [f"u{i}@down.example"])
    await settle(sched)
    assert sched.stats.deferred == 10
    assert len(agent.jobs) == 1  # the other nine were deferred without a new attempt
    assert spool.counts() == (10, 10)
    await sched.stop()


async def test_agent_crash_holds_the_message(tmp_path: Path) -> None:
    class Broken:
        async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
            raise ValueError("bug")

    clock, bounces = FakeClock(), Bounces()
    spool, sched = build(tmp_path, ScriptedAgent(lambda j, r: OK), clock, bounces)
    sched.agents["remote"] = Broken()  # type: ignore[assignment]
    await sched.start()
    qid = await put(spool, sched, clock, ["a@example.net"])
    await settle(sched)
    info = spool.message(qid)
    assert info is not None and info.held and "bug" in (info.hold_reason or "")
    clock.t += 10_000
    await asyncio.sleep(0.15)
    assert sched.stats.held == 1 and spool.counts() == (1, 1)  # kept, not retried, not lost
    await sched.stop()


@pytest.mark.parametrize("window", [5])
async def test_window_bounds_memory_and_scan_catches_up(tmp_path: Path, window: int) -> None:
    clock, bounces = FakeClock(), Bounces()
    gate = asyncio.Event()

    class Slow:
        seen = 0
        peak = 0

        async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
            Slow.peak = max(Slow.peak, sched.active)
            await gate.wait()
            Slow.seen += 1
            return [DeliveryResult.from_reply(r, OK, "x") for r in job.recipients]

    spool, sched = build(tmp_path, ScriptedAgent(lambda j, r: OK), clock, bounces,
                         active_window=window)
    sched.agents["remote"] = Slow()  # type: ignore[assignment]
    await sched.start()
    for i in range(20):
        await put(spool, sched, clock, [f"u{i}@example.net"])
    assert sched.active == window  # the other 15 wait on disk
    gate.set()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if spool.counts() == (0, 0):
            break
    assert Slow.seen == 20 and Slow.peak <= window
    assert spool.counts() == (0, 0)
    await sched.stop()
