"""Memory of Hayate holding a large queue: 100,000 messages it cannot deliver.

Hayate relays everything to 127.0.0.1:PORT where nothing listens, so every delivery attempt
fails with "connection refused" and every message stays queued (deferred). smtp-source puts
COUNT messages in; the summed resident memory (VmRSS, and Pss which counts pages shared between
worker processes once) of all hayate processes is sampled throughout, and again after a quiet
spell in which the scheduler has scanned the queue and tried deliveries. With ``--restart`` it
then stops Hayate and starts it again on the same spool, to see the memory of loading a full
queue at startup. Target: under 300 MB (the design asks for a bounded active window).

    python -m bench.queue_memory                 # 100,000 messages of 2 KB
    python -m bench.queue_memory --count 20000 --restart
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.hayate import HayateRelay, missing_hayate
from bench.procs import RssSampler, free_port, interrupt_on_term, session_pids, session_usage
from bench.smtptools import Source, missing_tools

TARGET_MB = 300


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.queue_memory", description=__doc__)
    p.add_argument("--count", type=int, default=int(os.environ.get("BENCH_QUEUE_COUNT", 100_000)))
    p.add_argument("--size", type=int, default=2048, help="message size in bytes")
    p.add_argument("--sessions", type=int, default=20, help="smtp-source sessions")
    p.add_argument("--settle", type=float, default=15.0, help="seconds to watch after loading")
    p.add_argument("--restart", action="store_true", help="restart Hayate on the full spool")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to load at most")
    return p.parse_args(argv)


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def spool_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                size += (Path(folder) / name).stat().st_size
                files += 1
            except OSError:
                continue
    return files, size


def report(relay: HayateRelay, sampler: RssSampler, label: str) -> int:
    """Print the memory now and the peaks; returns the current summed VmRSS in kB."""
    now = session_usage(relay.proc.pid) if relay.proc else None
    if now is None:
        return 0
    per_process = []
    for pid in sorted(session_pids(relay.proc.pid if relay.proc else 0)):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "0")
        per_process.append(f"{pid}:{int(rss) // 1024}MB")
    print(
        f"  {label}: {now.processes} processes, RSS now {mb(now.rss_kb)} "
        f"(peak {mb(sampler.peak_kb)}), PSS now {mb(now.pss_kb)} (peak {mb(sampler.peak_pss_kb)}); "
        f"{' '.join(per_process)}"
    )
    return now.rss_kb


def load(relay: HayateRelay, args: argparse.Namespace) -> str | None:
    """Send COUNT messages into Hayate; None when smtp-source finished cleanly."""
    start = time.monotonic()
    deadline = start + args.timeout
    next_print = start + 5
    with Source(relay.port, sessions=args.sessions, count=args.count, size=args.size) as source:
        while source.poll() is None:
            now = time.monotonic()
            if now > deadline:
                return f"timeout after {args.timeout:.0f}s with {source.sent} sent"
            if gone := relay.alive():
                return gone
            if now >= next_print:
                next_print = now + 5
                rate = source.sent / (now - start)
                print(
                    f"  {source.sent:>7} queued, {rate:.0f} msg/s, "
                    f"RSS {mb(session_usage(relay.proc.pid).rss_kb) if relay.proc else '-'}",
                    flush=True,
                )
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        print(
            f"  smtp-source done: {source.sent} messages in {elapsed:.1f}s "
            f"({source.sent / elapsed:.0f} msg/s), exit status {source.poll()}"
        )
        if source.poll() != 0:
            return f"smtp-source failed: {source.errors()}"
    return None


def settle(relay: HayateRelay, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone := relay.alive():
            return gone
        time.sleep(0.25)
    return None


def count_spool(data_dir: Path) -> int:
    """Messages in every spool shard, counted in the spool itself (not by the client)."""
    from hayate.store.spool import open_all

    total = 0
    for spool in open_all(data_dir / "spool"):
        total += spool.counts()[0]
        spool.close()
    return total


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_term()
    for problem in (missing_tools(), missing_hayate()):
        if problem:
            print(f"cannot run the queue memory benchmark: {problem}")
            return 2
    base = os.environ.get("BENCH_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="hayate-queue-bench-", dir=base))
    closed_port = free_port()  # nothing listens there: every attempt is refused
    print(
        f"queue memory: {args.count} messages of {args.size} bytes, nexthop "
        f"127.0.0.1:{closed_port} (closed), spool in {root}"
    )
    final_kb = 0
    queued = 0
    try:
        with HayateRelay(closed_port, root=root) as relay:
            assert relay.proc is not None
            with RssSampler(relay.proc.pid) as sampler:
                report(relay, sampler, "idle")
                if problem := load(relay, args):
                    print(f"  failed: {problem}")
                    return 1
                report(relay, sampler, "loaded")
                if problem := settle(relay, args.settle):
                    print(f"  failed: {problem}")
                    return 1
                final_kb = report(relay, sampler, f"after {args.settle:.0f}s more")
                peak_kb = sampler.peak_kb
        files, size = spool_size(root / "var")
        queued = count_spool(root / "var")
        print(f"  spool: {files} files, {size / 2**20:.0f} MiB, {queued} messages in it")
        if args.restart:
            with HayateRelay(closed_port, root=root, start_timeout=300) as relay:
                assert relay.proc is not None
                with RssSampler(relay.proc.pid) as sampler:
                    if problem := settle(relay, args.settle):
                        print(f"  failed after restart: {problem}")
                        return 1
                    restart_kb = report(relay, sampler, "restarted on the full spool")
                    final_kb = max(final_kb, restart_kb)
                    peak_kb = max(peak_kb, sampler.peak_kb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    verdict = "met" if final_kb < TARGET_MB * 1024 else "NOT met"
    if queued != args.count:
        verdict += f"; but {queued} of {args.count} messages were in the spool"
    print(
        f"  result: {queued} queued, RSS {mb(final_kb)} at rest, peak {mb(peak_kb)} "
        f"(target < {TARGET_MB} MB: {verdict})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; hayate and smtp-source stopped")
        sys.exit(130)
