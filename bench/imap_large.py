"""A large IMAP mailbox: SELECT and SEARCH on 100,000 messages without loading them all.

Loads one account's INBOX straight through the SQLite store (``deliver_many`` in
batches): small messages of 1-4 KB with varied senders and subjects; every 50th has
"Quarterly figures" in its subject, a few carry the rare word "zanzibar" in the body, and
all but the newest 5% are flagged \\Seen. Then it starts ``hayate serve`` (one worker,
IMAP on 127.0.0.1 port 0, passwords allowed without TLS) and, with imaplib, times SELECT
INBOX, UID SEARCH UNSEEN, SEARCH SUBJECT, SEARCH BODY, UID FETCH 1:* (UID FLAGS) and
SORT (DATE), checking every count. The worker's peak resident memory (VmHWM) before and
after, against the total size of the bodies, shows whether the server kept them out of
memory.

    python -m bench.imap_large                    # 100,000 messages
    python -m bench.imap_large --messages 5000

BENCH_TMPDIR picks where the data folder goes; BENCH_KEEP=1 keeps it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import imaplib
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bench.hayate import hayate_executable, missing_hayate
from bench.procs import interrupt_on_term, stop_process

DOMAIN = "large.test"
USER = f"big@{DOMAIN}"
PASSWORD = "large-password"
RARE_WORD = "zanzibar"
SUBJECT_WORD = "Quarterly"
SUBJECT_EVERY = 50  # every 50th message has SUBJECT_WORD in its subject
RARE_EVERY = 10_007  # messages 7, 10014, ... and the last one carry RARE_WORD
UNSEEN_SHARE = 20  # the newest 1/20 of the mailbox is unseen
BATCH = 1000
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0  # seconds for any one IMAP command

_WORDS = (
    "meeting", "report", "budget", "schedule", "project", "review", "draft", "release",
    "server", "delivery", "customer", "order", "shipment", "payment", "account", "update",
    "notice", "request", "invoice", "team", "lunch", "travel", "contract", "backup",
    "the", "of", "and", "to", "in", "is", "for", "with", "on", "from", "at", "we", "our",
)
_SENDERS = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
)
_LISTEN_LINE = re.compile(r"^\s+imap\s+(\S+):(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Planted:
    """What the loaded mailbox holds, to check the server's answers against."""

    messages: int
    body_bytes: int
    subject_hits: int
    rare_hits: int
    unseen: int


def is_rare(n: int, count: int) -> bool:
    return n % RARE_EVERY == 7 or n == count


class _Writer:
    """Deterministic small messages, one at a time."""

    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.rng = random.Random(seed)
        self.lines = [
            " ".join(self.rng.choices(_WORDS, k=self.rng.randint(6, 14))).capitalize() + "."
            for _ in range(2000)
        ]
        self.start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()

    def message(self, n: int) -> bytes:
        rng = self.rng
        sender = rng.choice(_SENDERS)
        if n % SUBJECT_EVERY == 0:
            subject = f"{SUBJECT_WORD} figures #{n}"
        else:
            subject = " ".join(rng.choices(_WORDS[:24], k=rng.randint(2, 5))).capitalize()
            subject += f" #{n}"
        # dates not in delivery order, so SORT (DATE) has something to do
        when = self.start + (n * 7919 % self.count) * 300 + rng.randrange(300)
        head = (
            f"From: {sender.capitalize()} <{sender}@example.com>\r\n"
            f"To: {USER}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {format_datetime(datetime.fromtimestamp(when, tz=UTC))}\r\n"
            f"Message-ID: <{n}.{rng.getrandbits(32):x}@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        )
        target = rng.randint(1000, 4000) - len(head)
        lines: list[str] = []
        size = 0
        while size < target:
            line = self.lines[rng.randrange(len(self.lines))]
            lines.append(line)
            size += len(line) + 2
        if is_rare(n, self.count):
            lines.insert(rng.randrange(len(lines) + 1), f"Postcard from {RARE_WORD} island.")
        return (head + "\r\n".join(lines) + "\r\n").encode()


def batches(count: int, seed: int) -> Iterator[list[bytes]]:
    writer = _Writer(count, seed)
    for first in range(1, count + 1, BATCH):
        yield [writer.message(n) for n in range(first, min(first + BATCH, count + 1))]


async def load_store(db: Path, count: int, seed: int) -> Planted:
    """Create the account and deliver ``count`` messages; flag all but the newest as seen."""
    from hayate.store import open_store

    store = open_store("sqlite", db)
    await store.create()
    body_bytes = 0
    uids: list[int] = []
    try:
        await store.migrate()
        await store.add_account(USER, PASSWORD)
        for chunk in batches(count, seed):
            body_bytes += sum(len(m) for m in chunk)
            uids += await store.deliver_many([(USER, m) for m in chunk])
        unseen = count // UNSEEN_SHARE
        seen = uids[: count - unseen]
        account_id = await store.open_folders(USER)
        inbox = await store.get_folder(account_id, "INBOX")
        if inbox is None:
            raise RuntimeError("the account has no INBOX")
        for first in range(0, len(seen), 5000):
            part = seen[first : first + 5000]
            await store.store_flags(
                account_id, inbox.id, ((part[0], part[-1]),), "add", ("\\Seen",)
            )
    finally:
        await store.close()
    return Planted(
        messages=count,
        body_bytes=body_bytes,
        subject_hits=count // SUBJECT_EVERY,
        rare_hits=sum(1 for n in range(1, count + 1) if is_rare(n, count)),
        unseen=unseen,
    )


def write_config(root: Path) -> Path:
    path = root / "hayate.toml"
    path.write_text(
        f'hostname = "mx.{DOMAIN}"\n'
        f'data_dir = "{root / "var"}"\n'
        f'local_domains = ["{DOMAIN}"]\n'
        'log_level = "warning"\n'
        "workers = 1\n"
        '\n[listen]\nimap = "127.0.0.1:0"\n'
        "\n[mailbox]\nplaintext_auth = true\n",
        encoding="utf-8",
    )
    return path


def read_imap_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The IMAP port ``hayate serve`` announces on its standard output."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                match = _LISTEN_LINE.match(line)
                if match:
                    return int(match.group(2))
        if proc.poll() is not None:
            break
    raise RuntimeError(f"hayate serve announced no IMAP port: {buf.decode(errors='replace')}")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def find_worker(serve_pid: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(serve_pid)
        if found:
            return found[0]
        time.sleep(0.05)
    raise RuntimeError("hayate serve started no worker")


@dataclass(frozen=True, slots=True)
class Step:
    operation: str
    seconds: float
    count: int
    expected: int | None
    worker_hwm_kb: int  # the worker's peak resident memory once the step is done
    worker_rss_kb: int  # and its resident memory right then


def timed(worker: int, name: str, expected: int | None, run: Callable[[], int]) -> Step:
    started = time.monotonic()
    count = run()
    seconds = time.monotonic() - started
    memory = memory_kb(worker)
    return Step(
        name, seconds, count, expected, memory.get("VmHWM", 0), memory.get("VmRSS", 0)
    )


def _ok(typ: str, data: Sequence[object], what: str) -> Sequence[object]:
    if typ != "OK":
        raise RuntimeError(f"{what}: {typ} {data!r}")
    return data


def _numbers(data: Sequence[object]) -> int:
    first = data[0] if data else b""
    return len(first.split()) if isinstance(first, bytes) else 0


def run_session(port: int, worker: int, planted: Planted) -> list[Step]:
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=COMMAND_TIMEOUT)
    try:
        steps = [timed(worker, "LOGIN", None, lambda: len(conn.login(USER, PASSWORD)[1]))]

        def select_inbox() -> int:
            data = _ok(*conn.select("INBOX", readonly=False), "SELECT")
            return int(data[0]) if isinstance(data[0], bytes) else -1

        def uid_search_unseen() -> int:
            return _numbers(_ok(*conn.uid("SEARCH", "UNSEEN"), "UID SEARCH UNSEEN"))

        def search_subject() -> int:
            return _numbers(
                _ok(*conn.search(None, "SUBJECT", f'"{SUBJECT_WORD.lower()}"'), "SEARCH")
            )

        def search_body() -> int:
            return _numbers(_ok(*conn.search(None, "BODY", f'"{RARE_WORD}"'), "SEARCH BODY"))

        def fetch_flags() -> int:
            data = _ok(*conn.uid("FETCH", "1:*", "(UID FLAGS)"), "UID FETCH")
            return sum(1 for item in data if isinstance(item, bytes) and b"FLAGS" in item)

        def sort_date() -> int:
            return _numbers(_ok(*conn.sort("(DATE)", "UTF-8", "ALL"), "SORT"))

        n = planted.messages
        steps += [
            timed(worker, "SELECT INBOX", n, select_inbox),
            timed(worker, "UID SEARCH UNSEEN", planted.unseen, uid_search_unseen),
            timed(worker, f'SEARCH SUBJECT "{SUBJECT_WORD.lower()}"', planted.subject_hits,
                  search_subject),
            timed(worker, f'SEARCH BODY "{RARE_WORD}"', planted.rare_hits, search_body),
            timed(worker, "UID FETCH 1:* (UID FLAGS)", n, fetch_flags),
            timed(worker, "SORT (DATE) UTF-8 ALL", n, sort_date),
        ]
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
        return steps
    finally:
        with contextlib.suppress(OSError):
            conn.shutdown()


def megabytes(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    interrupt_on_term()
    problem = missing_hayate()
    if problem:
        print(f"bench.imap_large: {problem}", file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="hayate-imap-large-", dir=os.environ.get("BENCH_TMPDIR")))
    proc: subprocess.Popen[bytes] | None = None
    try:
        (root / "var").mkdir()
        started = time.monotonic()
        planted = asyncio.run(load_store(root / "var" / "hayate.db", args.messages, args.seed))
        load_seconds = time.monotonic() - started
        db_bytes = sum(p.stat().st_size for p in (root / "var").glob("hayate.db*"))
        print(
            f"loaded {planted.messages:,} messages, {planted.body_bytes / 1e6:.0f} MB of "
            f"bodies, in {load_seconds:.1f} s (database {db_bytes / 1e6:.0f} MB)",
            flush=True,
        )
        config = write_config(root)
        with (root / "hayate.log").open("ab") as log:
            proc = subprocess.Popen(
                [str(hayate_executable()), "serve", "-c", str(config)],
                cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        port = read_imap_port(proc, START_TIMEOUT)
        worker = find_worker(proc.pid)
        before = memory_kb(worker)
        steps = run_session(port, worker, planted)
        after = memory_kb(worker)

        print(
            f"\n{'operation':<30} {'seconds':>8} {'count':>9} {'expected':>9} "
            f"{'VmHWM':>7} {'VmRSS':>7}"
        )
        failed = False
        for step in steps:
            mark = "" if step.expected in (None, step.count) else "  MISMATCH"
            failed = failed or bool(mark)
            expected = "" if step.expected is None else f"{step.expected:,}"
            print(
                f"{step.operation:<30} {step.seconds:8.2f} {step.count:>9,} {expected:>9} "
                f"{megabytes(step.worker_hwm_kb):>7} {megabytes(step.worker_rss_kb):>7}{mark}"
            )
        idle_hwm = before.get("VmHWM", 0)
        login_hwm = steps[0].worker_hwm_kb
        final_hwm = after.get("VmHWM", 0)
        growth = final_hwm - login_hwm
        print(
            f"\nbodies {planted.body_bytes / 1e6:.0f} MB; worker VmHWM {megabytes(idle_hwm)} "
            f"idle, {megabytes(login_hwm)} after LOGIN, {megabytes(final_hwm)} at the end; "
            f"VmRSS now {megabytes(after.get('VmRSS', 0))}"
        )
        print(
            f"growth after LOGIN: {megabytes(growth)}, "
            f"{growth * 1024 / planted.body_bytes:.0%} of the bodies' size "
            "(LOGIN's peak is argon2id's 64 MiB, not the mailbox)"
        )
        return 1 if failed else 0
    except RuntimeError as exc:
        print(f"bench.imap_large: {exc}", file=sys.stderr)
        tail = (root / "hayate.log")
        if tail.exists():
            print(tail.read_text(errors="replace")[-2000:], file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_process(proc, grace=10.0)
            if proc.stdout is not None:
                proc.stdout.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
