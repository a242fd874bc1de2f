"""Shaping limits held node-wide: a real ``hayate serve`` with two workers, smtp-sink behind
the counting relay (``relay.py``), mail sent over SMTP on many connections so that both
workers accept some and both have mail for the same site at once. The last test drives the
delivery agents of two "workers" in this process, their pools sharing one table.

The relay slows the receiver's answers a little (``REPLY_DELAY``) so that the deliveries of
the two workers overlap: with limits per worker process the receiver would see twice the
connections and twice the rate.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.integration.shaping.relay import CountingRelay, RelayThread
from tests.support.hayate_server import HayateServer
from tests.support.sink import smtp_sink

from hayate.config import DeliveryConfig
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.core.sharedtable import NodeSlots, SharedTable
from hayate.delivery.remote import RemoteDeliveryAgent

pytestmark = pytest.mark.peer

REPLY_DELAY = 0.01  # seconds per answer of the receiver


def _server(tmp_path: Path, relay: CountingRelay, shaping: str) -> HayateServer:
    shaping_file = tmp_path / "shaping.toml"
    shaping_file.write_text(shaping)
    return HayateServer(
        tmp_path / "server", relay_networks=("127.0.0.0/8",), workers=2,
        transport=[{"domain": "example.net", "nexthop": relay.address}],
        sections={
            "shaping": {"presets": False, "file": str(shaping_file)},
            "delivery": {"tls": "none", "idle_timeout": 1.0, "connect_timeout": 3.0},
            "dkim": {"sign": False},
        },
    )


def _send(server: HayateServer, count: int) -> int:
    """``count`` messages, each on a connection of its own, from 8 clients at once; the two
    workers accept connections from the same listening socket, so both usually get some.
    If one got them all, a few more are sent until both have mail. Returns how many."""
    port = server.ports["smtp"]

    def one(i: int) -> None:
        body = f"From: app@hayate.test\r\nSubject: m{i}\r\n\r\nmessage {i}\r\n".encode()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("app@hayate.test", [f"r{i}@example.net"], body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
        sent = count
        for _ in range(10):
            if len(_accepting_pids(server)) == 2:
                break
            list(pool.map(one, range(sent, sent + 8)))
            sent += 8
    assert len(_accepting_pids(server)) == 2, "one worker accepted every message"
    return sent


def _accepting_pids(server: HayateServer) -> set[str]:
    """The processes that logged accepting a message (ingest logs it at once)."""
    return set(re.findall(r"hayate\[(\d+)\] hayate\.ingest INFO", server.log()))


def _wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_workers_share_the_connection_limit(tmp_path: Path) -> None:
    count = 80
    with smtp_sink() as sink, RelayThread((sink.host, sink.port), REPLY_DELAY) as relay, \
            _server(tmp_path, relay, "[default]\nconnections = 2\n"
                                     "messages_per_connection = 5\n") as server:
        count = _send(server, count)  # both workers have mail for the site
        _wait(lambda: sum(relay.mails) == count, 60, f"{count} MAIL commands at the sink")
        assert sink.wait_counters(mesg=count)["mesg"] == count
    assert relay.peak <= 2, relay.peak  # TCP connections open at once, QUIT or not
    assert relay.peak_sessions == 2  # the limit is used
    assert max(relay.mails) <= 5, relay.mails


def test_two_workers_share_the_rate_limit(tmp_path: Path) -> None:
    """60 a minute asked for (burst 1): about 21 in 20 s for the node, where two workers
    with a bucket each would send about 42."""
    count, seconds, per_minute = 60, 20.0, 60
    with smtp_sink() as sink, RelayThread((sink.host, sink.port), REPLY_DELAY) as relay, \
            _server(tmp_path, relay, f"[default]\nconnections = 4\n"
                                     f"messages_per_minute = {per_minute}\n") as server:
        started = time.monotonic()
        _send(server, count)  # both workers have mail for the site
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        got = sum(relay.mails)
    print(f"rate {per_minute}/min over two workers: the receiver got {got} in {seconds:.0f} s")
    allowed = 1 + per_minute / 60 * seconds  # burst + rate × time
    # +1: between one worker's look at the bucket and its take, the other may take the
    # same token (the debt is paid back by the next waits).
    assert got <= allowed + 1, got
    assert got >= allowed * 0.7, got  # the rate is used, not just respected


def _workers_of(server: HayateServer) -> list[int]:
    """The pids of the master's children (its workers)."""
    assert server.proc is not None
    master = server.proc.pid
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == master:
            pids.append(int(entry.name))
    return pids


def test_connections_of_killed_workers_are_freed(tmp_path: Path) -> None:
    """Both workers are killed while one holds the site's only connection: the restarted
    workers deliver the rest (a leaked count would block the site for good)."""
    count = 30
    with smtp_sink(dump=True) as sink, RelayThread((sink.host, sink.port), 0.05) as relay, \
            _server(tmp_path, relay, "[default]\nconnections = 1\n") as server:
        count = _send(server, count)
        _wait(lambda: relay.active == 1 and sum(relay.mails) >= 2, 20, "a delivery under way")
        workers = _workers_of(server)
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: len(_workers_of(server)) == 2 and set(_workers_of(server)).isdisjoint(
            workers), 20, "the restarted workers")

        def delivered() -> set[str]:
            return {r for m in sink.messages() for r in m.recipients}

        want = {f"r{i}@example.net" for i in range(count)}
        _wait(lambda: delivered() >= want, 60, "every message at the sink")
        assert re.search(r"freed [1-9]\d* connection slot\(s\) worker \d held", server.log())
    assert relay.peak <= 1, relay.peak


class _NoDns:
    """A nexthop IP needs no DNS; any lookup is a test bug."""

    async def resolve_mx(self, domain: str) -> object:
        raise AssertionError(f"unexpected MX lookup of {domain}")

    async def resolve_addresses(self, host: str) -> list[str]:
        raise AssertionError(f"unexpected address lookup of {host}")


async def test_two_pools_share_connections_per_destination() -> None:
    """``[delivery] connections_per_destination`` without shaping in the way: the agents of
    two workers (their pools sharing one table) deliver 40 messages at once to one
    destination; the receiver sees at most the limit, idle and closing connections
    included, and every count is given back once the connections are closed."""
    table = SharedTable(2)
    cfg = DeliveryConfig(connect_timeout=3.0, command_timeout=3.0, tls="none",
                         idle_timeout=0.3, connections_per_destination=2)
    with smtp_sink() as sink:
        async with CountingRelay((sink.host, sink.port), REPLY_DELAY) as relay:
            agents = [RemoteDeliveryAgent(cfg, "client.hayate.test", _NoDns())
                      for _ in (0, 1)]
            for worker, agent in enumerate(agents):
                agent.pool.share(NodeSlots(table, worker))
            jobs = [DeliveryJob(queue_id=f"Q{i}", sender="app@hayate.test",
                                recipients=(f"r{i}@example.net",),
                                data=b"Subject: pool\r\n\r\nhello\r\n",
                                destination="example.net", nexthop=relay.address)
                    for i in range(40)]
            results = await asyncio.gather(*(agents[i % 2].deliver(job)
                                             for i, job in enumerate(jobs)))
            assert all(r.outcome is Outcome.DELIVERED for rs in results for r in rs)
            node_key = "pool\x1fexample.net\x1f"
            assert (table.held(node_key) or 0) >= 1  # idle connections still count ...
            for agent in agents:
                await agent.close()
            assert table.held(node_key) == 0  # ... until they are closed
    assert sum(relay.mails) == 40
    assert relay.peak <= 2, relay.peak
    assert relay.peak_sessions == 2
