"""IMAP sync throughput: mbsync pulls a whole mailbox from Hayate and from Dovecot.

Both servers get the same deterministic mailbox (``bench.imap_mail.make_messages``: 10,000
messages by default, ~240 MB, mostly 2-20 KB with some attachments and a few of up to
1 MB). Hayate's copy goes into its store through ``deliver_many``; Dovecot's is written
straight into a Maildir and indexed before the first round. Each round runs ``mbsync``
(isync) against each server in turn, into a fresh local Maildir (``FSync no``, so the
client's disk is not what is measured), and checks that every message arrived intact
(the same fingerprints, allowing for mbsync's LF line ends and X-TUID header). Printed:
seconds, msgs/s and MB/s per run, the server's CPU seconds for the run (all processes of
its session, from /proc), then the median time per server and the ratio Hayate/Dovecot
against the target (2.0).

    python -m bench.imap                      # 10,000 messages, 3 rounds
    python -m bench.imap --quick              # 1 round
    python -m bench.imap --messages 2000 --only hayate

BENCH_TMPDIR picks where both servers keep their mail (default: the system temp folder);
BENCH_KEEP=1 keeps the folders afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.hayate import missing_hayate
from bench.imap_dovecot import PrivateDovecot, missing_dovecot
from bench.imap_mail import HayateImap, make_messages
from bench.procs import Usage, interrupt_on_term

MBSYNC = "mbsync"
TARGET = 2.0  # Hayate time / Dovecot time
SYNC_TIMEOUT = 120.0  # seconds for one mbsync run, plus SYNC_TIMEOUT_PER_MESSAGE each
SYNC_TIMEOUT_PER_MESSAGE = 0.05


class Server(Protocol):
    name: str
    port: int
    user: str
    password: str

    def usage(self) -> Usage: ...
    def log_tail(self, lines: int = 4) -> str: ...


@dataclass(frozen=True, slots=True)
class Run:
    server: str
    round: int
    seconds: float
    cpu: float
    messages: int
    megabytes: float


def missing_mbsync() -> str | None:
    if shutil.which(MBSYNC) is None:
        return "mbsync is not installed (Debian package isync)"
    return None


def mbsync_config(server: Server, near: Path, state: Path) -> str:
    return (
        "FSync no\n\n"
        "IMAPAccount far\n"
        "Host 127.0.0.1\n"
        f"Port {server.port}\n"
        f"User {server.user}\n"
        f'Pass "{server.password}"\n'
        "SSLType None\n"
        "AuthMechs LOGIN\n\n"
        "IMAPStore far\nAccount far\n\n"
        "MaildirStore near\n"
        f"Path {near}/\n"
        f"Inbox {near}/INBOX\n"
        "SubFolders Verbatim\n\n"
        "Channel pull\nFar :far:\nNear :near:\nPatterns INBOX\nCreate Near\n"
        f"Sync Pull\nExpunge None\nSyncState {state}/\n"
    )


_TUID = re.compile(rb"^X-TUID: [^\n]*\n", re.MULTILINE)


def fingerprint(data: bytes) -> bytes:
    """A digest of a message that survives mbsync's storing: CRLF written as LF and an
    ``X-TUID`` header line added."""
    return hashlib.sha1(_TUID.sub(b"", data.replace(b"\r\n", b"\n"), count=1)).digest()


def fingerprints(messages: list[bytes]) -> list[bytes]:
    return sorted(fingerprint(m) for m in messages)


def pulled(near: Path) -> tuple[list[bytes], int]:
    """(sorted fingerprints, bytes) of the messages in the local INBOX after a sync."""
    found: list[bytes] = []
    size = 0
    for sub in ("cur", "new"):
        folder = near / "INBOX" / sub
        if folder.is_dir():
            for entry in os.scandir(folder):
                data = Path(entry.path).read_bytes()
                size += len(data)
                found.append(fingerprint(data))
    return sorted(found), size


def sync_once(server: Server, work: Path, expected: list[bytes], round_: int) -> Run:
    """One mbsync pull of the whole INBOX into an empty Maildir, checked against the
    ``expected`` fingerprints."""
    shutil.rmtree(work, ignore_errors=True)
    near, state = work / "near", work / "state"
    near.mkdir(parents=True)
    state.mkdir()
    rc = work / "mbsyncrc"
    rc.write_text(mbsync_config(server, near, state))
    before = server.usage().cpu
    started = time.monotonic()
    done = subprocess.run(
        [MBSYNC, "-q", "-c", str(rc), "-a"],
        capture_output=True, text=True,
        timeout=SYNC_TIMEOUT + SYNC_TIMEOUT_PER_MESSAGE * len(expected),
    )
    seconds = time.monotonic() - started
    cpu = server.usage().cpu - before
    if done.returncode != 0:
        raise RuntimeError(
            f"mbsync from {server.name} failed ({done.returncode}): "
            f"{done.stderr.strip()[-500:]}; server log: {server.log_tail()}"
        )
    found, size = pulled(near)
    if found != expected:
        missing = len(set(expected) - set(found))
        raise RuntimeError(
            f"mbsync from {server.name} pulled {len(found)} messages for {len(expected)}; "
            f"{missing} expected ones are missing or differ"
        )
    shutil.rmtree(work, ignore_errors=True)
    return Run(server.name, round_, seconds, cpu, len(found), size / 1e6)


def show_run(run: Run) -> None:
    print(
        f"  round {run.round}  {run.server:<8} {run.seconds:8.2f} s  "
        f"{run.messages / run.seconds:8.0f} msg/s  {run.megabytes / run.seconds:7.1f} MB/s  "
        f"server CPU {run.cpu:7.2f} s",
        flush=True,
    )


def summary(runs: list[Run]) -> None:
    by_server: dict[str, list[Run]] = {}
    for run in runs:
        by_server.setdefault(run.server, []).append(run)
    print("\nmedian of the rounds:")
    medians: dict[str, float] = {}
    for name, group in by_server.items():
        seconds = statistics.median(r.seconds for r in group)
        cpu = statistics.median(r.cpu for r in group)
        medians[name] = seconds
        count = group[0].messages
        print(
            f"  {name:<8} {seconds:8.2f} s  {count / seconds:8.0f} msg/s  "
            f"server CPU {cpu:7.2f} s ({cpu / count * 1e6:6.0f} µs/msg)"
        )
    if "Hayate" in medians and "Dovecot" in medians:
        ratio = medians["Hayate"] / medians["Dovecot"]
        verdict = "meets" if ratio <= TARGET else "misses"
        print(f"\nHayate / Dovecot time: {ratio:.2f} ({verdict} the target of {TARGET:.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=None, help="default 3, 1 with --quick")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--only", choices=("hayate", "dovecot"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    interrupt_on_term()

    problem = missing_mbsync() or (missing_hayate() if args.only != "dovecot" else None)
    if problem:
        print(f"bench.imap: {problem}", file=sys.stderr)
        return 2
    without_dovecot = None if args.only == "hayate" else missing_dovecot()
    if without_dovecot and args.only == "dovecot":
        print(f"bench.imap: {without_dovecot}", file=sys.stderr)
        return 2

    base_env = os.environ.get("BENCH_TMPDIR")
    base = Path(base_env) if base_env else None
    started = time.monotonic()
    messages = make_messages(args.messages, args.seed)
    total = sum(len(m) for m in messages)
    expected = fingerprints(messages)
    print(
        f"mailbox: {len(messages)} messages, {total / 1e6:.1f} MB "
        f"(built in {time.monotonic() - started:.1f} s); {rounds} round(s)",
        flush=True,
    )
    servers: list[Server] = []
    work = Path(tempfile.mkdtemp(prefix="mbsync-bench-", dir=base))
    try:
        if args.only != "hayate":
            if without_dovecot:
                print(f"  Dovecot skipped: {without_dovecot}")
            else:
                dovecot = PrivateDovecot(base=base)
                servers.append(dovecot)
                started = time.monotonic()
                dovecot.load(messages)
                dovecot.index()
                print(f"  Dovecot loaded in {time.monotonic() - started:.1f} s", flush=True)
        if args.only != "dovecot":
            hayate = HayateImap(messages, base=base)
            servers.append(hayate)
            print(f"  Hayate loaded in {hayate.load_seconds:.1f} s", flush=True)
        del messages
        runs: list[Run] = []
        for round_ in range(1, rounds + 1):
            order = servers if round_ % 2 else list(reversed(servers))
            for server in order:
                run = sync_once(server, work / server.name, expected, round_)
                runs.append(run)
                show_run(run)
        summary(runs)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench.imap: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.close()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
