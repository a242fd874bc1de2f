"""Micro-benchmark of the SMTP server: Postfix's smtp-source against a sink that stores nothing.

    python -m hayate.smtp.bench [-s 10] [-m 5000] [-l 2048] [--rounds 3] [--no-uvloop]
                                [--no-eager] [--compare-sink]

Prints msg/s and the server's CPU time per message (this process's CPU time; smtp-source is
a separate process). ``--compare-sink`` also runs Postfix's smtp-sink (the C ceiling) in the
same rounds, alternating, since timings on these machines spread by 30–50 % between runs.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time

from hayate.core.envelope import Envelope, Listener, SessionInfo
from hayate.core.reply import SmtpReply
from hayate.smtp.server import SmtpServerSettings, start_smtp_server

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
_QUEUED = SmtpReply(250, "2.0.0", "Ok: queued")


class NullPolicy:
    async def authenticate(self, username: str, password: str) -> str | None:
        return None

    async def check_sender(self, session: SessionInfo, sender: str) -> SmtpReply | None:
        return None

    async def check_recipient(
        self,
        session: SessionInfo,
        sender: str,
        recipient: str,
        declared_size: int | None = None,
    ) -> SmtpReply | None:
        return None


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def accept(self, session: SessionInfo, envelope: Envelope, data: bytes) -> SmtpReply:
        self.count += 1
        return _QUEUED


def _source_cmd(args: argparse.Namespace, port: int) -> list[str]:
    return [
        SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.length),
        "-f", "a@x.test", "-t", "b@y.test", f"127.0.0.1:{port}",
    ]


async def _run_hayate(args: argparse.Namespace) -> tuple[float, float, int]:
    sink = NullSink()
    settings = SmtpServerSettings("bench.test", Listener.MX, eager_calls=not args.no_eager)
    server = await start_smtp_server(settings, NullPolicy(), sink)
    try:
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*_source_cmd(args, server.port))
        await proc.wait()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    finally:
        server.close()
        await server.wait_closed()
    return wall, cpu, sink.count


def _run_sink(args: argparse.Namespace) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen(
        [SMTP_SINK, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        wall0 = time.perf_counter()
        subprocess.run(_source_cmd(args, port), check=True)
        return time.perf_counter() - wall0
    finally:
        sink.terminate()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-s", "--sessions", type=int, default=10)
    parser.add_argument("-m", "--messages", type=int, default=5000)
    parser.add_argument("-l", "--length", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--no-eager", action="store_true")
    parser.add_argument("--compare-sink", action="store_true")
    args = parser.parse_args()
    if not os.access(SMTP_SOURCE, os.X_OK):
        raise SystemExit(f"{SMTP_SOURCE} is missing (Debian package postfix)")
    logging.getLogger("hayate.smtp").setLevel(logging.WARNING)
    loop_name = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
            loop_name = "uvloop"
        except ImportError:
            pass
    print(
        f"smtp-source -s {args.sessions} -m {args.messages} -l {args.length}; loop={loop_name} "
        f"eager={not args.no_eager}"
    )
    for i in range(args.rounds):
        wall, cpu, count = asyncio.run(_run_hayate(args))
        print(
            f"round {i + 1}: hayate {count / wall:8.0f} msg/s  {cpu / max(count, 1) * 1e6:6.1f} "
            f"µs CPU/msg  ({count} messages, {wall:.2f} s)"
        )
        if args.compare_sink and shutil.which(SMTP_SINK):
            sink_wall = _run_sink(args)
            print(f"round {i + 1}: smtp-sink {args.messages / sink_wall:8.0f} msg/s")


if __name__ == "__main__":
    main()
