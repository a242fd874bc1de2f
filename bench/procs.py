"""Process plumbing for the benchmarks: free ports, waiting for a listener, killing whole
process sessions, and CPU / memory accounting read from /proc.

Every program a benchmark starts runs in its own session (``start_new_session=True``), so the
session id names the program and all its workers; :func:`session_usage` sums over it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def interrupt_on_term() -> None:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so cleanup runs."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_banner(
    port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> str | None:
    """Wait until an SMTP server on 127.0.0.1:``port`` greets with 220.

    Returns None when it did, else the reason it did not (timeout, or ``proc`` exited).
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return f"exited with status {proc.returncode} before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
                s.settimeout(5.0)
                greeting = s.recv(512)
                if greeting.startswith(b"220"):
                    with contextlib.suppress(OSError):
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    return None
                last = f"unexpected greeting {greeting[:60]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    return f"no 220 greeting on port {port} within {timeout:.0f}s ({last})"


def session_pids(sid: int) -> list[int]:
    """The live processes whose session id is ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(int(entry.name))
        if stat is not None and int(stat[3]) == sid:
            pids.append(int(entry.name))
    return pids


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds (user+system, reaped children included) and resident memory of a session."""

    cpu: float
    rss_kb: int  # sum of VmRSS now (pages shared between the processes count once per process)
    hwm_kb: int  # sum of each live process's own peak (VmHWM)
    pss_kb: int  # sum of Pss now: shared pages split between their users, so no double count
    processes: int


def session_usage(sid: int) -> Usage:
    cpu_ticks = 0
    rss = hwm = pss = count = 0
    for pid in session_pids(sid):
        stat = _stat_fields(pid)
        if stat is None:
            continue
        # fields after "(comm)": state=0 ... utime=11 stime=12 cutime=13 cstime=14
        cpu_ticks += sum(int(stat[i]) for i in (11, 12, 13, 14))
        status = _status_kb(pid)
        rss += status.get("VmRSS", 0)
        hwm += status.get("VmHWM", 0)
        pss += _pss_kb(pid)
        count += 1
    return Usage(cpu_ticks / CLOCK_TICKS, rss, hwm, pss, count)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RssSampler:
    """Samples a session's summed VmRSS and Pss in a thread and keeps the peaks."""

    def __init__(self, sid: int, interval: float = 0.5) -> None:
        self.sid = sid
        self.interval = interval
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{sid}", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = session_usage(self.sid)
            self.peak_kb = max(self.peak_kb, now.rss_kb)
            self.peak_pss_kb = max(self.peak_pss_kb, now.pss_kb)
            self._stop.wait(self.interval)


def kill_session(sid: int, grace: float = 5.0) -> None:
    """SIGTERM every process of session ``sid``, then SIGKILL what is left after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and session_pids(sid):
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End a program started with ``start_new_session=True`` and everything it started."""
    sid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, signal.SIGKILL)
            proc.wait(timeout=grace)
    kill_session(sid, grace)  # workers that outlived their parent


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


class ServerProcess:
    """A benchmarked server run from a private folder: ``root`` (removed on close unless
    BENCH_KEEP is set or ``keep_root``), ``log_path`` and the running ``proc`` (a session
    leader, so its CPU and memory are summed over every process it starts)."""

    root: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None
    keep_root: bool = False  # the folder was the caller's: leave it
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL on close

    def usage(self) -> Usage:
        if self.proc is None:
            return Usage(0.0, 0, 0, 0, 0)
        return session_usage(self.proc.pid)

    def log_tail(self, lines: int = 4) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def close(self) -> None:
        try:
            if self.proc is not None:
                stop_process(self.proc, grace=self.stop_grace)
        finally:
            if self.keep_root:
                pass
            elif os.environ.get("BENCH_KEEP"):
                print(f"  (kept {self.root})")
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
