"""End-to-end relay throughput: smtp-source → relay under test → smtp-sink, on 127.0.0.1.

For each message size (2 KB, 50 KB) and session count (1, 10, 50) it sends COUNT messages
with smtp-source (one connection per message) into the relay and stops the clock when a fresh
smtp-sink has counted all COUNT of them: msg/s = COUNT / (last arrival - first connect).
Hayate and a private Postfix run alternately, case by case (the machine's run-to-run spread is
30-50%, so only figures from the same run compare). The table shows msg/s for both, the ratio
Hayate/Postfix, CPU time per message (user+system of the relay's whole process session) and the
summed resident memory; then the two key ratios against their targets.

    python -m bench.relay                  # full run, a few seconds per case
    python -m bench.relay --quick          # short counts, for a smoke test
    python -m bench.relay --only postfix --sessions 10 --sizes 2048 --rounds 3

Counts come from --count-small/--count-large (or BENCH_COUNT_SMALL / BENCH_COUNT_LARGE);
BENCH_TMPDIR picks where spools live (default: the system temp folder; same disk for both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from bench.hayate import HayateRelay, missing_hayate
from bench.postfix import PostfixRelay, missing_postfix
from bench.procs import RssSampler, Usage, free_port, interrupt_on_term, wait_banner
from bench.smtptools import Sink, Source, missing_tools

SMALL, LARGE = 2048, 51200
TARGETS = {SMALL: 1.5, LARGE: 1.0}  # Hayate/Postfix at 10 sessions
KEY_SESSIONS = 10
STALL_SECONDS = 20.0  # give up when nothing arrives at the sink for this long


class Relay(Protocol):
    name: str
    port: int

    @property
    def sid(self) -> int | None: ...
    def usage(self) -> Usage: ...
    def alive(self) -> str | None: ...
    def leftover(self) -> str | None: ...
    def log_tail(self, lines: int = 4) -> str: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Case:
    size: int
    sessions: int
    count: int

    def label(self) -> str:
        return f"{self.size // 1024:>2} KB x {self.sessions:>2}"


@dataclass(frozen=True, slots=True)
class Result:
    relay: str
    size: int
    sessions: int
    count: int
    received: int
    seconds: float
    cpu_seconds: float
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.received >= self.count and not self.note

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_msg(self) -> float:
        return self.cpu_seconds / self.received * 1e6 if self.received else 0.0


def run_case(
    relay: Relay | None, sink_port: int, case: Case, workdir: Path, timeout: float
) -> Result:
    """One measurement. ``relay`` None sends straight to the sink (the ceiling)."""
    name = relay.name if relay else "direct"
    with Sink(sink_port, workdir) as sink:
        problem = wait_banner(sink_port, 10, sink.proc)
        if problem:
            return Result(name, case.size, case.sessions, case.count, 0, 0.0, 0.0, problem)
        before = relay.usage().cpu if relay else 0.0
        start = time.monotonic()
        deadline = start + timeout
        note = ""
        target = relay.port if relay else sink_port
        with Source(target, sessions=case.sessions, count=case.count, size=case.size) as source:
            next_check = start
            while True:
                received, changed = sink.count()
                now = time.monotonic()
                if received >= case.count:
                    break
                if now >= next_check:  # the dearer checks, four times a second
                    next_check = now + 0.25
                    if note := _trouble(relay, source, now, start, changed, deadline):
                        break
                time.sleep(0.002)
            elapsed = changed - start if received >= case.count else now - start
            if not note and source.errors():
                note = f"smtp-source: {source.errors()}"
        after = relay.usage().cpu if relay else 0.0
    if relay and not note and (left := relay.leftover()):
        note = f"queue not empty afterwards: {left}"
    return Result(
        name, case.size, case.sessions, case.count, received, elapsed, after - before, note
    )


def _trouble(
    relay: Relay | None, source: Source, now: float, start: float, changed: float, deadline: float
) -> str:
    """Why to stop waiting for the sink ('' to go on)."""
    if now > deadline:
        return f"timeout after {deadline - start:.0f}s"
    if now - max(changed, start) > STALL_SECONDS:
        return f"stalled: nothing arrived for {STALL_SECONDS:.0f}s"
    status = source.poll()
    if status not in (None, 0):
        return f"smtp-source failed ({status}): {source.errors()}"
    if relay and (gone := relay.alive()):
        return gone
    return ""


def warm_up(relay: Relay, sink_port: int, workdir: Path) -> str | None:
    """A short unmeasured run so that every process is started and every cache is warm."""
    result = run_case(relay, sink_port, Case(SMALL, 10, 100), workdir, 60)
    return None if result.complete else result.note or "warm-up incomplete"


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short counts (a smoke test)")
    p.add_argument("--sizes", default=f"{SMALL},{LARGE}", help="message sizes in bytes")
    p.add_argument("--sessions", default="1,10,50", help="concurrent smtp-source sessions")
    p.add_argument("--count-small", type=int, default=None, help="messages per 2 KB case")
    p.add_argument("--count-large", type=int, default=None, help="messages per 50 KB case")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "1")))
    p.add_argument("--only", choices=["hayate", "postfix"], default=None)
    p.add_argument("--ceiling", action="store_true", help="also smtp-source → smtp-sink direct")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per case at most")
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    args = p.parse_args(argv)
    small_default, large_default = (400, 200) if args.quick else (3000, 1500)
    if args.count_small is None:
        args.count_small = int(os.environ.get("BENCH_COUNT_SMALL", small_default))
    if args.count_large is None:
        args.count_large = int(os.environ.get("BENCH_COUNT_LARGE", large_default))
    return args


def make_cases(args: argparse.Namespace) -> list[Case]:
    sizes = [int(s) for s in str(args.sizes).split(",") if s]
    sessions = [int(s) for s in str(args.sessions).split(",") if s]
    cases: list[Case] = []
    for size in sizes:
        count = args.count_small if size <= 8192 else args.count_large
        cases.extend(Case(size, n, count) for n in sessions)
    return cases


@contextlib.contextmanager
def started(
    kind: str, sink_port: int, base: Path | None, skipped: dict[str, str]
) -> Iterator[Relay | None]:
    """The relay ``kind`` running (None, with the reason in ``skipped``, when it cannot)."""
    missing = missing_hayate() if kind == "Hayate" else missing_postfix()
    if missing:
        skipped[kind] = missing
        yield None
        return
    relay: Relay
    try:
        relay = HayateRelay(sink_port, base) if kind == "Hayate" else PostfixRelay(sink_port, base)
    except Exception as exc:
        skipped[kind] = f"did not start: {exc}"
        yield None
        return
    try:
        yield relay
    finally:
        relay.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_term()
    if problem := missing_tools():
        print(f"cannot run the relay benchmark: {problem}")
        return 2
    base = Path(os.environ["BENCH_TMPDIR"]) if os.environ.get("BENCH_TMPDIR") else None
    cases = make_cases(args)
    kinds = [k for k in ("Hayate", "Postfix") if args.only in (None, k.lower())]
    skipped: dict[str, str] = {}
    results: list[Result] = []
    samplers: dict[str, RssSampler] = {}
    print(
        f"relay benchmark: {len(cases)} cases x {args.rounds} round(s), sizes {args.sizes}, "
        f"sessions {args.sessions}, counts {args.count_small}/{args.count_large}"
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-", dir=base)))
        relays: list[tuple[Relay, int]] = []
        for kind in kinds:
            sink_port = free_port()
            relay = stack.enter_context(started(kind, sink_port, base, skipped))
            if relay is None:
                print(f"  {kind}: skipped: {skipped[kind]}")
                continue
            if problem := warm_up(relay, sink_port, workdir):
                print(f"  {kind}: skipped: warm-up failed: {problem}; its log ends:")
                print("    " + relay.log_tail(12).replace(" | ", "\n    "))
                skipped[kind] = f"warm-up failed: {problem}"
                relay.close()  # a broken relay retrying in the background would skew the rest
                continue
            if relay.sid is not None:
                samplers[kind] = stack.enter_context(RssSampler(relay.sid))
            relays.append((relay, sink_port))
            print(f"  {kind}: listening on 127.0.0.1:{relay.port}, relaying to :{sink_port}")
        if not relays and not args.ceiling:
            print("nothing to measure")
            return 1
        print()
        print(
            f"  {'case':<12} {'relay':<8} {'msgs':>6} {'secs':>7} {'msg/s':>8} {'CPU µs/msg':>11}"
        )
        for rnd in range(args.rounds):
            for i, case in enumerate(cases):
                order = relays if (i + rnd) % 2 == 0 else relays[::-1]
                runs: list[tuple[Relay | None, int]] = list(order)
                if args.ceiling:
                    runs.append((None, free_port()))
                for relay_or_none, sink_port in runs:
                    timeout = min(args.timeout, max(60.0, case.count / 10))
                    r = run_case(relay_or_none, sink_port, case, workdir, timeout)
                    results.append(r)
                    note = f"  ! {r.note}" if r.note else ""
                    cpu = f"{r.cpu_us_per_msg:>11.0f}" if relay_or_none else f"{'-':>11}"
                    print(
                        f"  {case.label():<12} {r.relay:<8} {r.received:>6} {r.seconds:>7.2f} "
                        f"{r.rate:>8.0f} {cpu}{note}",
                        flush=True,
                    )
    peaks = {kind: (s.peak_kb, s.peak_pss_kb) for kind, s in samplers.items()}
    print_summary(cases, results, skipped, peaks)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


# -- report ------------------------------------------------------------------------------------


def median_rate(results: list[Result], relay: str, case: Case) -> float | None:
    rates = [
        r.rate
        for r in results
        if r.relay == relay and r.size == case.size and r.sessions == case.sessions and r.complete
    ]
    return statistics.median(rates) if rates else None


def median_cpu(results: list[Result], relay: str) -> float | None:
    values = [r.cpu_us_per_msg for r in results if r.relay == relay and r.complete]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def print_summary(
    cases: list[Case],
    results: list[Result],
    skipped: dict[str, str],
    peaks: dict[str, tuple[int, int]],
) -> None:
    print()
    print("msg/s, end to end (median over rounds; '-' = skipped or incomplete)")
    print(f"  {'size':>6} {'sessions':>8} {'count':>6} {'Hayate':>8} {'Postfix':>8} {'ratio':>7}")
    for case in cases:
        h, p = median_rate(results, "Hayate", case), median_rate(results, "Postfix", case)
        ratio = h / p if h and p else None
        print(
            f"  {case.size // 1024:>3} KB {case.sessions:>8} {case.count:>6} {fmt(h):>8} "
            f"{fmt(p):>8} {fmt(ratio, '.2f'):>6}x"
        )
    print()
    for size, target in TARGETS.items():
        key = Case(size, KEY_SESSIONS, 0)
        h, p = median_rate(results, "Hayate", key), median_rate(results, "Postfix", key)
        if h and p:
            verdict = "met" if h / p >= target else "NOT met"
            print(
                f"  key ratio {size // 1024} KB @{KEY_SESSIONS} sessions: {h / p:.2f}x "
                f"(target >= {target:.1f}x: {verdict})"
            )
        else:
            print(f"  key ratio {size // 1024} KB @{KEY_SESSIONS} sessions: not measured")
    for name in ("Hayate", "Postfix"):
        cpu = median_cpu(results, name)
        if cpu is not None:
            rss, pss = peaks.get(name, (0, 0))
            print(
                f"  {name}: median CPU {cpu:.0f} µs/msg (its whole process session); peak memory "
                f"summed over its processes: RSS {rss / 1024:.0f} MB, PSS {pss / 1024:.0f} MB"
            )
    for name, reason in skipped.items():
        print(f"  {name} columns skipped: {reason}")
    incomplete = [r for r in results if not r.complete]
    for r in incomplete:
        print(
            f"  incomplete: {r.relay} {r.size // 1024} KB x {r.sessions}: "
            f"{r.received}/{r.count} ({r.note})"
        )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; relays and load tools stopped")
        sys.exit(130)
