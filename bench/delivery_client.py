"""Micro-benchmark of the outbound SMTP client: N messages of S bytes to smtp-sink over C
connections, through RemoteDeliveryAgent (pool, pipelining, reuse) — not a timed test.

    .venv/bin/python -m bench.delivery_client [-n 5000] [-s 2048] [-c 10] [--loop uvloop]
        [--rounds 3] [--compare] [--streams]

Prints msg/s and CPU µs per message of this process (the sink's CPU is not counted).
``--streams`` also runs a bare asyncio-streams client doing the same exchange without pool
or result bookkeeping (the yardstick for choosing a Protocol). ``--compare`` also runs
Postfix's smtp-source against the same sink with the same numbers
(``-d``: connections kept open), alternating with ours, as the ceiling for this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tests.support.sink import smtp_sink

from hayate.config import DeliveryConfig
from hayate.core.seams import DeliveryJob, MxAnswer
from hayate.delivery.remote import RemoteDeliveryAgent

_T = TypeVar("_T")


class _NoDns:
    async def resolve_mx(self, domain: str) -> MxAnswer:
        raise AssertionError("the benchmark uses a nexthop")

    async def resolve_addresses(self, host: str) -> list[str]:
        return [host]


def _message(size: int) -> bytes:
    head = b"From: bench@example.org\r\nTo: sink@example.net\r\nSubject: bench\r\n\r\n"
    line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghij.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


async def _run_agent(address: str, count: int, size: int, conns: int) -> tuple[float, float]:
    config = DeliveryConfig(connections_per_destination=conns, tls="none")
    agent = RemoteDeliveryAgent(config, "bench.example.org", _NoDns())
    data = _message(size)
    jobs = [
        DeliveryJob(f"Q{i}", "bench@example.org", (f"r{i}@example.net",), data, address, address)
        for i in range(count)
    ]
    queue: asyncio.Queue[DeliveryJob] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    failed = 0

    async def worker() -> None:
        nonlocal failed
        while not queue.empty():
            job = queue.get_nowait()
            results = await agent.deliver(job)
            failed += sum(1 for r in results if r.reply.code != 250)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await agent.close()
    if failed:
        raise SystemExit(f"{failed} recipients not delivered: {agent.stats}")
    return wall, cpu


async def _run_streams(address: str, count: int, size: int, conns: int) -> tuple[float, float]:
    """The same exchange written on asyncio streams, no pool or results: the design baseline."""
    host, _, port = address.rpartition(":")
    body = _message(size) + b".\r\n"
    left = count

    async def read_reply(reader: asyncio.StreamReader) -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    async def session() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(host, int(port))
        await read_reply(reader)
        writer.write(b"EHLO bench.example.org\r\n")
        await read_reply(reader)
        while left > 0:
            left -= 1
            writer.write(b"MAIL FROM:<bench@example.org>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n")
            for _ in range(3):
                await read_reply(reader)
            writer.write(body)
            await read_reply(reader)
        writer.write(b"QUIT\r\n")
        await read_reply(reader)
        writer.close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(session() for _ in range(conns)))
    return time.perf_counter() - t0, time.process_time() - cpu0


def _run_smtp_source(address: str, count: int, size: int, conns: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            "/usr/sbin/smtp-source",
            *("-d", "-s", str(conns), "-m", str(count), "-l", str(size)),
            *("-f", "bench@example.org", "-t", "sink@example.net", address),
        ],
        check=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=5000)
    ap.add_argument("-s", "--size", type=int, default=2048)
    ap.add_argument("-c", "--connections", type=int, default=10)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare", action="store_true", help="also run smtp-source, alternating")
    ap.add_argument(
        "--streams", action="store_true", help="also run a bare asyncio-streams client, alternating"
    )
    args = ap.parse_args()
    n, size, conns = args.messages, args.size, args.connections
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop

    def runner(coro: Coroutine[Any, Any, _T]) -> _T:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro)

    with smtp_sink(backlog=1024) as sink:
        for rnd in range(1, args.rounds + 1):
            wall, cpu = runner(_run_agent(sink.address, n, size, conns))
            print(
                f"round {rnd} hayate ({args.loop}): {n / wall:8.0f} msg/s, "
                f"{cpu / n * 1e6:6.1f} µs CPU/msg ({n} x {size} B over {conns} connections)"
            )
            if args.streams:
                wall, cpu = runner(_run_streams(sink.address, n, size, conns))
                print(
                    f"round {rnd} bare streams ({args.loop}): {n / wall:8.0f} msg/s, "
                    f"{cpu / n * 1e6:6.1f} µs CPU/msg"
                )
            if args.compare:
                wall = _run_smtp_source(sink.address, n, size, conns)
                print(f"round {rnd} smtp-source -d   : {n / wall:8.0f} msg/s")
        print("sink counters:", sink.test_counters())


if __name__ == "__main__":
    main()
