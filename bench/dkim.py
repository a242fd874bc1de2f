"""Relay throughput with DKIM signing on (rsa-2048) against the same relay without it.

smtp-source sends From: <from@bench.test> through ``hayate serve`` to smtp-sink, exactly like
``bench.relay``; one Hayate has an rsa-2048 key for bench.test (every relayed message gets a
DKIM-Signature), the other has none. The two alternate round by round in the same run, and the
median rates give the ratio signed/unsigned (target: at least 0.80). Each line also shows
how busy the whole machine was (all CPUs, everything on it): the relay, smtp-source and
smtp-sink share two vCPUs, so near 100% the ratio is set by CPU per message (why signing
stays inline, and the ceiling this puts on the ratio: :mod:`hayate.auth.signing`).

    python -m bench.dkim                 # 2 KB and 50 KB at 10 sessions, 3 rounds
    python -m bench.dkim --quick         # short counts, one round
    python -m bench.dkim --algo ed25519  # the same with an ed25519 key
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench.hayate import HayateRelay, missing_hayate
from bench.procs import free_port
from bench.relay import LARGE, SMALL, Case, Result, run_case, warm_up
from bench.smtptools import missing_tools

TARGET = 0.80
SIGNED_DOMAIN = "bench.test"  # bench.smtptools.Source sends From: <from@bench.test>


def cpu_ticks() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return sum(values), values[3] + values[4]  # idle + iowait


def busy_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy all CPUs were between two :func:`cpu_ticks` (100% = every CPU busy)."""
    total = after[0] - before[0]
    return 100.0 * (1 - (after[1] - before[1]) / total) if total > 0 else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.dkim", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short counts, one round")
    p.add_argument("--sizes", default=f"{SMALL},{LARGE}", help="message sizes in bytes")
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--algo", choices=["rsa", "ed25519"], default="rsa")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = missing_tools() or missing_hayate()
    if problem:
        print(f"bench.dkim: skipped: {problem}")
        return 0
    sizes = [int(s) for s in str(args.sizes).split(",") if s]
    sink_port = free_port()
    print(f"DKIM signing cost: {args.algo} key for {SIGNED_DOMAIN}, {args.sessions} sessions, "
          f"{args.rounds} round(s), alternating")
    results: dict[tuple[str, int], list[Result]] = {}
    with contextlib.ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hayate-dkim-bench-")))
        relays = {
            "unsigned": stack.enter_context(HayateRelay(sink_port, base)),
            "signed": stack.enter_context(
                HayateRelay(sink_port, base, dkim=(SIGNED_DOMAIN, args.algo))
            ),
        }
        for name, relay in relays.items():
            if (trouble := warm_up(relay, sink_port, base)) is not None:
                print(f"  {name}: warm-up failed: {trouble}")
                return 1
        for _ in range(args.rounds):
            for size in sizes:
                small = size <= 8192
                count = (400 if small else 200) if args.quick else (3000 if small else 1500)
                case = Case(size, args.sessions, count)
                for name, relay in relays.items():
                    before = cpu_ticks()
                    result = run_case(relay, sink_port, case, base, args.timeout)
                    busy = busy_percent(before, cpu_ticks())
                    results.setdefault((name, size), []).append(result)
                    status = "" if result.complete else f"  INCOMPLETE: {result.note}"
                    print(f"  {case.label()}  {name:<8} {result.rate:8.0f} msg/s "
                          f"{result.cpu_us_per_msg:7.0f} µs CPU/msg  machine {busy:3.0f}% busy"
                          f"{status}", flush=True)
    print()
    print("| case | unsigned msg/s | signed msg/s | signed/unsigned | CPU µs/msg |")
    print("|---|---|---|---|---|")
    ok = True
    for size in sizes:
        plain = [r for r in results.get(("unsigned", size), []) if r.complete]
        signed = [r for r in results.get(("signed", size), []) if r.complete]
        if not plain or not signed:
            print(f"| {size // 1024} KB x {args.sessions} | incomplete | | | |")
            ok = False
            continue
        rate_plain = statistics.median(r.rate for r in plain)
        rate_signed = statistics.median(r.rate for r in signed)
        cpu_plain = statistics.median(r.cpu_us_per_msg for r in plain)
        cpu_signed = statistics.median(r.cpu_us_per_msg for r in signed)
        ratio = rate_signed / rate_plain
        ok = ok and ratio >= TARGET
        print(f"| {size // 1024} KB x {args.sessions} | {rate_plain:.0f} | {rate_signed:.0f} | "
              f"**{ratio:.2f}** (target {TARGET:.2f}) | {cpu_plain:.0f} → {cpu_signed:.0f} |")
    print()
    print("target met" if ok else "target NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
