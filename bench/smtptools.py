"""Postfix's load tools as benchmark peers: ``smtp-sink`` (counts what arrives) and
``smtp-source`` (sends the load).

:class:`Sink` runs ``smtp-sink -c`` and reads its running ``mesg=N`` counter from stdout in a
thread, so the benchmark can stop its clock the moment the last message arrives.
:class:`Source` runs ``smtp-source`` (one connection per message, like PEERS.md measured) and
keeps its ``-c`` progress counter.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from bench.procs import stop_process

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
_MESG_RE = re.compile(rb"mesg=(\d+)\r")  # only complete counters, ended by their CR
_COUNT_RE = re.compile(rb"(\d+)[\r\n]")


def missing_tools() -> str | None:
    """Why the load tools cannot run here, or None when they can."""
    for tool in (SMTP_SINK, SMTP_SOURCE):
        if not Path(tool).is_file():
            return f"{tool} is not installed (Debian package postfix)"
    return None


class Sink:
    """A fresh smtp-sink on 127.0.0.1:``port`` that counts received messages."""

    def __init__(self, port: int, workdir: Path, dump_dir: Path | None = None) -> None:
        """``dump_dir``: also keep every received message there, one file each."""
        self.port = port
        self.messages = 0
        self.last_change = time.monotonic()
        self._lock = threading.Lock()
        user = ["-u", "postfix"] if os.geteuid() == 0 else []  # it refuses to run as root
        dump = ["-d", f"{dump_dir}/"] if dump_dir is not None else []  # file names: random hex
        self._stderr = (workdir / f"sink-{port}.err").open("wb")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-c", *user, *dump, f"127.0.0.1:{port}", "1024"],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"sink-{port}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        tail = b""
        for chunk in _chunks(self.proc.stdout):
            tail = (tail + chunk)[-256:]
            found = _MESG_RE.findall(tail)
            if found:
                count = int(found[-1])
                with self._lock:
                    if count != self.messages:
                        self.messages = count
                        self.last_change = time.monotonic()

    def count(self) -> tuple[int, float]:
        """(messages received so far, monotonic time of the last change)."""
        with self._lock:
            return self.messages, self.last_change

    def close(self) -> None:
        try:
            stop_process(self.proc, grace=2.0)
        finally:
            self._reader.join(timeout=2)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source:
    """smtp-source sending ``count`` messages of ``size`` bytes over ``sessions`` sessions."""

    def __init__(
        self,
        port: int,
        *,
        sessions: int,
        count: int,
        size: int,
        sender: str = "from@bench.test",
        recipient: str = "to@example.net",
    ) -> None:
        self.sent = 0
        self._stderr_tail = b""
        self.proc = subprocess.Popen(
            [
                SMTP_SOURCE,
                "-c",
                "-s",
                str(sessions),
                "-m",
                str(count),
                "-l",
                str(size),
                "-f",
                sender,
                "-t",
                recipient,
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._threads = [
            threading.Thread(target=self._read_counter, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_counter(self) -> None:
        assert self.proc.stdout is not None
        tail = b""
        for chunk in _chunks(self.proc.stdout):
            tail = (tail + chunk)[-64:]
            found = _COUNT_RE.findall(tail)
            if found:
                self.sent = int(found[-1])

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for chunk in _chunks(self.proc.stderr):
            self._stderr_tail = (self._stderr_tail + chunk)[-2000:]

    def poll(self) -> int | None:
        return self.proc.poll()

    def errors(self) -> str:
        """The last lines smtp-source wrote to stderr (its complaints), if any."""
        lines = self._stderr_tail.decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-3:])

    def close(self) -> None:
        try:
            stop_process(self.proc, grace=2.0)
        finally:
            for t in self._threads:
                t.join(timeout=2)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """What a pipe delivers, as it arrives, until end of file."""
    fd = stream.fileno()
    while chunk := os.read(fd, 65536):
        yield chunk
