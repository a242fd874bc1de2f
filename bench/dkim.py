"""Relay throughput with DKIM signing on (rsa-2048) against the same relay without it.

smtp-source sends From: <from@bench.test> through ``hayate serve`` to smtp-sink, exactly like
``bench.relay``; one Hayate has an rsa-2048 key for bench.test (every relayed message gets a
DKIM-Signature), the other has none. The reference runs the same way: a private Postfix with
OpenDKIM as its signing milter (rsa-2048, relaxed/relaxed), and the same Postfix without it.
All relays alternate round by round in the same run, and the median rates give the ratios
signed/unsigned (target for Hayate: at least 0.80) and Hayate signed / Postfix+OpenDKIM.
Before measuring, a few messages go through each relay to a sink that keeps them, to check
that the signed relays sign (and the others do not).

Each line also shows how busy the whole machine was (all CPUs, everything on it): the relay,
smtp-source and smtp-sink share the CPUs, so near 100% the ratio is set by CPU per message.
The last line says where that caps the ratio: the machine's CPU per relayed message (unsigned)
against the same plus one RSA-2048 signature as timed here (why signing stays inline, and what
else was tried: :mod:`hayate.auth.signing`).

    python -m bench.dkim                 # 2 KB and 50 KB at 10 sessions, 3 rounds
    python -m bench.dkim --quick         # short counts, one round
    python -m bench.dkim --no-peer       # Hayate only
    python -m bench.dkim --algo ed25519  # Hayate with an ed25519 key (OpenDKIM stays rsa)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from bench.hayate import HayateRelay, missing_hayate
from bench.opendkim import OpenDkimMilter, missing_opendkim
from bench.postfix import PostfixRelay, missing_postfix
from bench.procs import Usage, free_port, wait_banner
from bench.relay import LARGE, SMALL, Case, Relay, Result, run_case, warm_up
from bench.smtptools import Sink, Source, missing_tools

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


class SigningPostfix:
    """A private Postfix whose smtpd hands every message to an OpenDKIM milter (one relay to
    the benchmark: its CPU is Postfix's and OpenDKIM's together)."""

    name = "Postfix+OpenDKIM"

    def __init__(self, sink_port: int, base: Path) -> None:
        self.milter = OpenDkimMilter(SIGNED_DOMAIN, base)
        try:
            self.postfix = PostfixRelay(
                sink_port,
                base,
                settings=[
                    f"smtpd_milters = {self.milter.milter}",
                    "milter_default_action = tempfail",  # never pass mail on unsigned
                ],
            )
        except BaseException:
            self.milter.close()
            raise
        self.port = self.postfix.port

    @property
    def sid(self) -> int | None:
        return self.postfix.sid

    def usage(self) -> Usage:
        a, b = self.postfix.usage(), self.milter.usage()
        return Usage(a.cpu + b.cpu, a.rss_kb + b.rss_kb, a.hwm_kb + b.hwm_kb,
                     a.pss_kb + b.pss_kb, a.processes + b.processes)

    def alive(self) -> str | None:
        if self.milter.proc is None or self.milter.proc.poll() is not None:
            return "opendkim exited"
        return self.postfix.alive()

    def leftover(self) -> str | None:
        return self.postfix.leftover()

    def log_tail(self, lines: int = 4) -> str:
        return self.postfix.log_tail(lines)

    def close(self) -> None:
        try:
            self.postfix.close()
        finally:
            self.milter.close()


def signature_check(
    relay: Relay, sink_port: int, signs: bool, base: Path, count: int = 3
) -> str | None:
    """Send ``count`` messages through ``relay`` to a sink on ``sink_port`` that keeps them;
    None when each has a DKIM-Signature by d=bench.test (``signs``) or none has one."""
    dump = Path(tempfile.mkdtemp(prefix="dkim-check-", dir=base))
    dump.chmod(0o777)  # smtp-sink runs as the postfix user when started as root
    try:
        with Sink(sink_port, base, dump_dir=dump) as sink:
            if problem := wait_banner(sink_port, 10, sink.proc):
                return f"sink: {problem}"
            with Source(relay.port, sessions=1, count=count, size=SMALL):
                deadline = time.monotonic() + 30
                while sink.count()[0] < count and time.monotonic() < deadline:
                    time.sleep(0.05)
        files = sorted(dump.iterdir())
        if len(files) < count:
            return f"{len(files)} of {count} messages arrived at the checking sink"
        for f in files:
            head = f.read_bytes().split(b"\r\n\r\n", 1)[0].lower()
            signed = b"dkim-signature:" in head and b"d=" + SIGNED_DOMAIN.encode() in head
            if signed != signs:
                return f"a message arrived {'without' if signs else 'with'} a DKIM-Signature"
        return None
    finally:
        shutil.rmtree(dump, ignore_errors=True)


def rsa_sign_microseconds(rounds: int = 300) -> float:
    """What one RSA-2048 PKCS#1 v1.5 signature costs here through ``cryptography``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    digest = hashlib.sha256(b"bench").digest()
    pad, prehashed = padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    for _ in range(20):
        key.sign(digest, pad, prehashed)
    start = time.process_time()
    for _ in range(rounds):
        key.sign(digest, pad, prehashed)
    return (time.process_time() - start) / rounds * 1e6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.dkim", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short counts, one round")
    p.add_argument("--sizes", default=f"{SMALL},{LARGE}", help="message sizes in bytes")
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--algo", choices=["rsa", "ed25519"], default="rsa")
    p.add_argument("--no-peer", action="store_true", help="skip Postfix and Postfix+OpenDKIM")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


PAIRS = (("Hayate", "unsigned", "signed"), ("Postfix", "postfix", "postfix+opendkim"))


def start_relays(
    stack: contextlib.ExitStack, sink_port: int, base: Path, algo: str, peer: bool
) -> dict[str, Relay]:
    """The relays by name, in the order they take turns; the peer only when ``peer``."""
    relays: dict[str, Relay] = {
        "unsigned": stack.enter_context(HayateRelay(sink_port, base)),
        "signed": stack.enter_context(HayateRelay(sink_port, base, dkim=(SIGNED_DOMAIN, algo))),
    }
    if peer:
        relays["postfix"] = stack.enter_context(PostfixRelay(sink_port, base))
        relays["postfix+opendkim"] = stack.enter_context(
            contextlib.closing(SigningPostfix(sink_port, base))
        )
    return relays


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = missing_tools() or missing_hayate()
    if problem:
        print(f"bench.dkim: skipped: {problem}")
        return 0
    peer = not args.no_peer
    if peer and (why := missing_postfix() or missing_opendkim()):
        print(f"bench.dkim: no Postfix+OpenDKIM reference: {why}")
        peer = False
    sizes = [int(s) for s in str(args.sizes).split(",") if s]
    sink_port = free_port()
    print(f"DKIM signing cost: {args.algo} key for {SIGNED_DOMAIN}, {args.sessions} sessions, "
          f"{args.rounds} round(s), alternating")
    results: dict[tuple[str, int], list[Result]] = {}
    busy: dict[tuple[str, int], list[float]] = {}
    with contextlib.ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hayate-dkim-bench-")))
        base.chmod(0o755)  # Postfix's and smtp-sink's users must reach their folders
        relays = start_relays(stack, sink_port, base, args.algo, peer)
        for name, relay in relays.items():
            signs = name in ("signed", "postfix+opendkim")
            if (trouble := signature_check(relay, sink_port, signs, base)) is not None:
                print(f"  {name}: signature check failed: {trouble}")
                return 1
            if (trouble := warm_up(relay, sink_port, base)) is not None:
                print(f"  {name}: warm-up failed: {trouble}")
                return 1
        print("  signature check: the signed relays sign, the others do not")
        for _ in range(args.rounds):
            for size in sizes:
                small = size <= 8192
                count = (400 if small else 200) if args.quick else (3000 if small else 1500)
                case = Case(size, args.sessions, count)
                for name, relay in relays.items():
                    before = cpu_ticks()
                    result = run_case(relay, sink_port, case, base, args.timeout)
                    load = busy_percent(before, cpu_ticks())
                    results.setdefault((name, size), []).append(result)
                    busy.setdefault((name, size), []).append(load)
                    status = "" if result.complete else f"  INCOMPLETE: {result.note}"
                    print(f"  {case.label()}  {name:<16} {result.rate:8.0f} msg/s "
                          f"{result.cpu_us_per_msg:7.0f} µs CPU/msg  machine {load:3.0f}% busy"
                          f"{status}", flush=True)
    return report(results, busy, sizes, args.sessions, peer)


def _median_rate(results: list[Result]) -> float | None:
    done = [r.rate for r in results if r.complete]
    return statistics.median(done) if done else None


def report(
    results: dict[tuple[str, int], list[Result]],
    busy: dict[tuple[str, int], list[float]],
    sizes: list[int],
    sessions: int,
    peer: bool,
) -> int:
    print()
    print("| case | relay | unsigned msg/s | signed msg/s | signed/unsigned | CPU µs/msg |")
    print("|---|---|---|---|---|---|")
    ok = True
    for size in sizes:
        for label, plain_name, signed_name in PAIRS if peer else PAIRS[:1]:
            plain = _median_rate(results.get((plain_name, size), []))
            signed = _median_rate(results.get((signed_name, size), []))
            if plain is None or signed is None:
                print(f"| {size // 1024} KB x {sessions} | {label} | incomplete | | | |")
                ok = ok and label != "Hayate"
                continue
            cpu = [statistics.median(r.cpu_us_per_msg for r in results[(n, size)] if r.complete)
                   for n in (plain_name, signed_name)]
            ratio = signed / plain
            target = f" (target {TARGET:.2f})" if label == "Hayate" else ""
            if label == "Hayate":
                ok = ok and ratio >= TARGET
            print(f"| {size // 1024} KB x {sessions} | {label} | {plain:.0f} | {signed:.0f} | "
                  f"**{ratio:.2f}**{target} | {cpu[0]:.0f} → {cpu[1]:.0f} |")
    print()
    if peer:
        for size in sizes:
            ours = _median_rate(results.get(("signed", size), []))
            theirs = _median_rate(results.get(("postfix+opendkim", size), []))
            if ours and theirs:
                print(f"{size // 1024} KB: Hayate signed / Postfix+OpenDKIM signed = "
                      f"{ours / theirs:.2f}x")
    rsa_us = rsa_sign_microseconds()
    cpus = os.cpu_count() or 1
    for size in sizes:
        done = [(r, b) for r, b in zip(results.get(("unsigned", size), []),
                                       busy.get(("unsigned", size), []), strict=True)
                if r.complete and r.rate > 0]
        if not done:
            continue
        machine_us = statistics.median(b / 100 * cpus / r.rate * 1e6 for r, b in done)
        print(f"{size // 1024} KB: the machine spends {machine_us:.0f} µs of CPU per relayed "
              f"message unsigned; one RSA-2048 signature costs {rsa_us:.0f} µs here, so with "
              f"every CPU busy signed/unsigned cannot exceed "
              f"{machine_us / (machine_us + rsa_us):.2f}")
    print()
    print("target met" if ok else "target NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
