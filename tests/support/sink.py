"""Postfix's smtp-sink as a real SMTP peer for tests, on 127.0.0.1 and a free port.

    with smtp_sink("-r", "RCPT", dump=True) as sink:
        ... connect to sink.host / sink.port ...
        sink.wait_counters(mesg=3)      # counters printed by smtp-sink -c
        sink.messages()                 # what it received (dumped with -d)

Options are passed through to smtp-sink (see ``man smtp-sink``): ``-P`` (no ESMTP,
so EHLO is refused), ``-p`` (no PIPELINING), ``-r CMD`` / ``-f CMD`` (4xx / 5xx to a command;
both imply no PIPELINING), ``-q``/``-Q`` (hang up / 421 after a command), ``-w`` (delay DATA).
When running as root ``-u postfix`` is added (smtp-sink refuses to run as root otherwise).
Dumps use ``-d DIR/%M.``: one file per transaction, headers written by smtp-sink first (see
:class:`SinkMessage`), then the message with CRLF turned into LF and dots unstuffed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SMTP_SINK = "/usr/sbin/smtp-sink"
START_TIMEOUT = 5.0


@dataclass(frozen=True)
class SinkMessage:
    """One transaction as smtp-sink dumped it."""

    helo: str
    client_addr: str  # the address the client connected from
    mail_args: str  # e.g. "<a@example.org> SIZE=12 BODY=8BITMIME"
    rcpt_args: tuple[str, ...]  # e.g. ("<b@example.net>",)
    content: bytes  # header + body as received, LF line ends, without the added last line

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(a.split(">", 1)[0].lstrip("<") for a in self.rcpt_args)


def parse_dump(raw: bytes) -> SinkMessage:
    helo, mail_args, client_addr = "", "", ""
    rcpts: list[str] = []
    lines = raw.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(b"X-Client-Addr: "):
            client_addr = line[15:].decode()
        elif line.startswith(b"X-Helo-Args: "):
            helo = line[13:].decode()
        elif line.startswith(b"X-Mail-Args: "):
            mail_args = line[13:].decode()
        elif line.startswith(b"X-Rcpt-Args: "):
            rcpts.append(line[13:].decode())
        elif line.startswith(b"Received: "):
            i += 2  # the Received header smtp-sink adds is three lines long
            break
    content = b"\n".join(lines[i:])
    if content.endswith(b"\n\n"):
        content = content[:-1]  # smtp-sink appends an empty line to every dump
    return SinkMessage(helo, client_addr, mail_args, tuple(rcpts), content)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class SmtpSink:
    """A running smtp-sink process."""

    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int, workdir: Path) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.workdir = workdir
        self.dump_dir = workdir / "dump"
        self.out_file = workdir / "stdout"
        self.baseline: dict[str, int] = {}

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def counters(self) -> dict[str, int]:
        """The last counter line of ``-c`` (sess = sessions ended, quit, mesg = messages)."""
        text = self.out_file.read_bytes().decode(errors="replace")
        for entry in reversed(text.replace("\r", "\n").split("\n")):
            if "mesg=" in entry:
                fields = dict(f.split("=", 1) for f in entry.split() if "=" in f)
                return {k: int(v) for k, v in fields.items() if v.isdigit()}
        return {"sess": 0, "quit": 0, "mesg": 0}

    def test_counters(self) -> dict[str, int]:
        """The counters minus what the start-up probe connection added."""
        now = self.counters()
        return {k: v - self.baseline.get(k, 0) for k, v in now.items()}

    def wait_counters(self, timeout: float = 5.0, **expected: int) -> dict[str, int]:
        """Poll :meth:`test_counters` until each named one reached at least its value.

        Returns the counters seen last (also after a time-out: the caller asserts on them).
        """
        deadline = time.monotonic() + timeout
        while True:
            now = self.test_counters()
            if all(now.get(k, 0) >= v for k, v in expected.items()):
                return now
            if time.monotonic() > deadline:
                return now
            time.sleep(0.02)

    def messages(self) -> list[SinkMessage]:
        """Every dumped transaction, by file time (transactions ending together: any order)."""
        if not self.dump_dir.is_dir():
            return []
        files = sorted(self.dump_dir.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [parse_dump(p.read_bytes()) for p in files if p.is_file()]

    def wait_messages(self, count: int, timeout: float = 5.0) -> list[SinkMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def require_sink() -> None:
    """Skip the calling test when smtp-sink cannot be run here."""
    if not os.access(SMTP_SINK, os.X_OK):
        pytest.skip(f"{SMTP_SINK} is not installed (Debian package postfix)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            pytest.skip("smtp-sink needs an unprivileged user 'postfix' when run as root")


@contextlib.contextmanager
def smtp_sink(
    *options: str,
    dump: bool = False,
    backlog: int = 256,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> Iterator[SmtpSink]:
    """Start smtp-sink with ``options`` (plus ``-c``, and ``-u postfix`` as root).

    It listens on ``host`` (any 127.x.y.z works on Linux loopback, so two sinks can share a
    port on 127.0.0.1 and 127.0.0.2) and ``port``, a free one when not given.
    """
    require_sink()
    workdir = Path(tempfile.mkdtemp(prefix="hayate-sink-"))
    args = [SMTP_SINK, "-c"]
    if os.geteuid() == 0 and "-u" not in options:
        args += ["-u", "postfix"]
    if dump:
        (workdir / "dump").mkdir()
        if os.geteuid() == 0:
            workdir.chmod(0o755)  # smtp-sink writes as user postfix
            shutil.chown(workdir / "dump", user="postfix")
        args += ["-d", str(workdir / "dump" / "%M.")]
    args += list(options)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(1 if port else 5):
            use_port = port or _free_port(host)
            with open(workdir / "stdout", "wb") as out:
                proc = subprocess.Popen(
                    [*args, f"{host}:{use_port}", str(backlog)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if _accepts(host, use_port):
                    # That probe connection counts as one session in the counters: wait
                    # for it to be counted so tests start from a known state.
                    sink = SmtpSink(proc, host, use_port, workdir)
                    sink.wait_counters(sess=1, timeout=2.0)
                    sink.baseline = sink.counters()
                    yield sink
                    return
                time.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc = None
        output = (workdir / "stdout").read_bytes().decode(errors="replace")
        raise RuntimeError(f"smtp-sink did not start: {output.strip()}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
