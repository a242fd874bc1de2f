"""Shaping measured at a real receiver: Postfix's smtp-sink, the real RemoteDeliveryAgent.

Between the agent and smtp-sink runs :class:`CountingRelay` (``relay.py`` here), a plain
TCP relay on 127.0.0.1 that counts what the receiver is offered: connections open at once
and MAIL commands per connection (smtp-sink's own counters give totals only). The
scheduler gets its
limits from the real Shaping (an operator file given as text) and a transport nexthop, so
no DNS is involved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.shaping.relay import CountingRelay
from tests.support.sink import smtp_sink

from hayate.config import DeliveryConfig, QueueConfig
from hayate.delivery.remote import RemoteDeliveryAgent
from hayate.queue.scheduler import Scheduler
from hayate.queue.shaping import Shaping, ShapingFile, parse_shaping
from hayate.store.spool import Spool, SpoolMessage, SpoolRecipient

pytestmark = pytest.mark.peer

DELIVERY = DeliveryConfig(connect_timeout=3.0, command_timeout=3.0, tls="none", idle_timeout=1.0)


def shaping(text: str) -> Shaping:
    return Shaping.from_files(ShapingFile(), parse_shaping(text), DELIVERY)


class Harness:
    def __init__(self, tmp_path: Path, nexthop: str, shaping_text: str,
                 min_backoff: float = 60.0, **kw: object) -> None:
        self.spool = Spool(tmp_path / "shard-0.db")
        self.nexthop = nexthop
        self.agent = RemoteDeliveryAgent(DELIVERY, "client.hayate.test", _NoDns())
        qcfg = QueueConfig(min_backoff=min_backoff, scan_interval=0.05, active_window=20000)
        self.scheduler = Scheduler(
            spool=self.spool, agents={"remote": self.agent, "local": self.agent},
            queue_cfg=qcfg,
            delivery_cfg=DELIVERY, hostname="mx.hayate.test", shaping=shaping(shaping_text),
            **kw,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> Harness:
        self.spool.committer.start()
        await self.scheduler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.scheduler.stop(grace=2.0)
        await self.agent.close()
        await self.spool.committer.stop()
        self.spool.close()

    async def put(self, rcpt: str, stream: str = "") -> None:
        msg = SpoolMessage(
            self.spool.new_id(), "sender@hayate.test", time.time(),
            b"Subject: shaping\r\nFrom: sender@hayate.test\r\n\r\nHello.\r\n",
            (SpoolRecipient(rcpt, "remote", self.nexthop, self.nexthop),), stream=stream,
        )
        active = self.scheduler.reserve(1)
        ids = await self.spool.store(msg, active)
        if active:
            self.scheduler.queued(msg, ids)


class _NoDns:
    """A nexthop IP needs no DNS; any lookup is a test bug."""

    async def resolve_mx(self, domain: str) -> object:
        raise AssertionError(f"unexpected MX lookup of {domain}")

    async def resolve_addresses(self, host: str) -> list[str]:
        raise AssertionError(f"unexpected address lookup of {host}")


async def wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def _run_limits(tmp_path: Path) -> CountingRelay:
    with smtp_sink() as sink:
        async with CountingRelay((sink.host, sink.port)) as relay:
            text = "[default]\nconnections = 3\nmessages_per_connection = 5\n"
            async with Harness(tmp_path, relay.address, text) as h:
                for i in range(60):
                    await h.put(f"rcpt{i}@example.net")
                await wait_for(lambda: h.scheduler.stats.delivered == 60, 20)
            counters = sink.wait_counters(mesg=60)
    assert counters["mesg"] == 60
    assert sum(relay.mails) == 60
    return relay


async def test_receiver_never_sees_more_than_the_limits(tmp_path: Path) -> None:
    relay = await _run_limits(tmp_path)
    assert relay.peak_sessions <= 3, relay.peak_sessions
    assert relay.peak_sessions >= 2  # the limit is used, not just respected
    assert max(relay.mails) <= 5, relay.mails
    assert len(relay.mails) >= 12  # 60 messages, at most 5 per connection


async def test_receiver_never_sees_more_tcp_connections_than_the_limit(tmp_path: Path) -> None:
    relay = await _run_limits(tmp_path)
    assert relay.peak <= 3, relay.peak


async def test_transactional_is_not_queued_behind_1000_bulk(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink:
        text = "[default]\nconnections = 2\n"
        async with Harness(tmp_path, sink.address, text) as h:
            for i in range(1000):
                await h.put(f"bulk{i}@example.net", stream="bulk")
            await h.put("urgent@example.net", stream="transactional")
            backlog = 1000 - h.scheduler.stats.delivered
            await wait_for(lambda: h.scheduler.stats.delivered == 1001, 60)
        found = sink.wait_messages(1001, timeout=10)
    assert backlog > 200  # the bulk backlog really was there when it was queued
    order = [m.recipients[0] for m in found]
    position = order.index("urgent@example.net")
    # Soon after it was queued, not after the backlog. The margin covers what was on the wire
    # then and the order of the sink's files, read from file times that are as coarse as a
    # kernel tick (10 was once too few on a busy machine); a FIFO would put it at 1000, at
    # least 150 past the bound.
    assert position < 1000 - backlog + 50, (position, backlog)


async def test_real_421_suspends_the_path_and_it_recovers(tmp_path: Path) -> None:
    # smtp-sink -Q MAIL answers "421 4.0.0 Server closing connection" to MAIL.
    rule = ('[[automation]]\ncodes = ["421"]\nmatch = "closing connection"\n'
            'action = "suspend"\nduration = "2s"\n')
    with smtp_sink("-Q", "MAIL") as busy:
        port = busy.port
        h = Harness(tmp_path, busy.address, "[default]\nconnections = 1\n" + rule,
                    min_backoff=1.0)
        await h.__aenter__()
        try:
            for i in range(5):
                await h.put(f"u{i}@example.net")
            await wait_for(lambda: h.scheduler.active == 0, 10)
            await asyncio.sleep(0.05)
            rows = [r for _, rs in h.spool.list_messages() for r in rs]
            assert len(rows) == 5
            assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 1]
            assert busy.test_counters().get("sess", 0) == 1  # one connection, then none
            [snap] = h.scheduler.sites_snapshot()
            assert snap["suspended_until"] is not None
            assert "closing connection" in str(snap["reason"])
        except BaseException:
            await h.__aexit__()
            raise
    # The receiver is fine again (a plain smtp-sink on the same port): after the 2 s
    # suspension the same scheduler delivers everything.
    try:
        with smtp_sink(port=port) as sink:
            await wait_for(lambda: h.spool.counts() == (0, 0), 15)
            assert h.scheduler.stats.delivered == 5
            assert sink.wait_counters(mesg=5)["mesg"] == 5
    finally:
        await h.__aexit__()


@pytest.mark.slow
async def test_rate_limit_holds_over_a_minute(tmp_path: Path) -> None:
    """SLOW (~60 s): 120 messages a minute asked for, 600 queued: about 120 arrive."""
    rate = 120
    with smtp_sink() as sink:
        text = f"[default]\nconnections = 4\nmessages_per_minute = {rate}\n"
        async with Harness(tmp_path, sink.address, text) as h:
            started = time.monotonic()
            for i in range(600):
                await h.put(f"r{i}@example.net")
            await asyncio.sleep(60.0 - (time.monotonic() - started))
            got = sink.test_counters().get("mesg", 0)
    print(f"rate limit {rate}/min: the sink got {got} messages in 60 s")
    assert abs(got - rate) <= rate * 0.10, got
