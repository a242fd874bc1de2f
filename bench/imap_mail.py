"""The benchmark mailbox: a deterministic mix of messages, and Hayate loaded with them.

``make_messages(count, seed)`` builds the same list for the same arguments: most messages
are plain or text+HTML mail of 2-20 KB, about 7% are multipart/mixed with one or two
base64 attachments (30-90 KB), about 1.5% are large (100 KB - 1 MB, a big attachment).
Text is cut from a pool of generated lines, attachments are seeded random bytes, so
building 10,000 messages takes seconds.

``HayateImap`` writes a config (IMAP on 127.0.0.1:PORT, passwords allowed without TLS),
creates the account and delivers the messages through the store (``deliver_many`` in
batches, one transaction each), then runs ``hayate serve`` in its own session.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bench.hayate import hayate_executable
from bench.imap_dovecot import wait_greeting
from bench.procs import ServerProcess, free_port

DOMAIN = "bench.test"
USER = f"bench@{DOMAIN}"
PASSWORD = "bench-password"

_WORDS = (
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "they", "you", "were", "her", "she", "there", "been", "one", "all", "we", "their", "has",
    "would", "when", "if", "so", "no", "what", "up", "out", "about", "who", "get", "them",
    "some", "could", "then", "its", "also", "into", "time", "only", "new", "invoice",
    "meeting", "report", "quarter", "budget", "schedule", "project", "review", "draft",
    "release", "server", "mailbox", "delivery", "customer", "order", "shipment", "payment",
    "account", "update", "notice", "request",
)


def _line_pool(rng: random.Random, count: int = 4000) -> list[bytes]:
    lines = []
    for _ in range(count):
        words = rng.choices(_WORDS, k=rng.randint(6, 14))
        lines.append(" ".join(words).capitalize().encode() + b".")
    return lines


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = _line_pool(self.rng)
        self.start = datetime(2025, 1, 1, tzinfo=UTC).timestamp()

    def text(self, size: int) -> bytes:
        out: list[bytes] = []
        total = 0
        pool = self.pool
        while total < size:
            line = pool[self.rng.randrange(len(pool))]
            out.append(line)
            total += len(line) + 2
        return b"\r\n".join(out) + b"\r\n"

    def attachment(self, size: int) -> bytes:
        raw = self.rng.randbytes(size * 3 // 4)
        return base64.encodebytes(raw).replace(b"\n", b"\r\n")

    def header(self, n: int, content_type: str) -> bytes:
        rng = self.rng
        sender = rng.choice(_WORDS[-20:])
        date = format_datetime(
            datetime.fromtimestamp(self.start + n * 97, tz=UTC)
        )
        subject = " ".join(rng.choices(_WORDS, k=rng.randint(3, 8))).capitalize()
        return (
            f"Return-Path: <{sender}@example.com>\r\n"
            f"Received: from mx{n % 7}.example.com by mx.{DOMAIN}; {date}\r\n"
            f"From: {sender.capitalize()} <{sender}@example.com>\r\n"
            f"To: {USER}\r\n"
            f"Subject: {subject} #{n}\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: <{n}.{rng.getrandbits(40):x}@example.com>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\n"
        ).encode()

    def plain(self, n: int) -> bytes:
        size = self.rng.randint(2_000, 20_000)
        if self.rng.random() < 0.3:
            boundary = f"alt-{n}"
            text = self.text(size // 2)
            html = b"<html><body><p>" + self.text(size // 2).replace(b"\r\n", b"</p>\r\n<p>")
            return self.header(n, f'multipart/alternative; boundary="{boundary}"') + (
                b"\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                b"\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s</p></body></html>"
                b"\r\n--%s--\r\n"
                % (boundary.encode(), text, boundary.encode(), html, boundary.encode())
            )
        return self.header(n, "text/plain; charset=utf-8") + b"\r\n" + self.text(size)

    def with_attachments(self, n: int, sizes: Sequence[int]) -> bytes:
        boundary = f"mixed-{n}".encode()
        parts = [
            self.header(n, f'multipart/mixed; boundary="{boundary.decode()}"'),
            b"\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
            % (boundary, self.text(self.rng.randint(500, 3000))),
        ]
        for index, size in enumerate(sizes, 1):
            parts.append(
                b"\r\n--%s\r\nContent-Type: application/octet-stream; name=\"file%d.bin\"\r\n"
                b"Content-Disposition: attachment; filename=\"file%d.bin\"\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n%s"
                % (boundary, index, index, self.attachment(size))
            )
        parts.append(b"\r\n--%s--\r\n" % boundary)
        return b"".join(parts)

    def message(self, n: int) -> bytes:
        kind = self.rng.random()
        if kind < 0.015:
            return self.with_attachments(n, [self.rng.randint(100_000, 1_000_000)])
        if kind < 0.085:
            count = self.rng.randint(1, 2)
            return self.with_attachments(n, [self.rng.randint(15_000, 45_000)] * count)
        return self.plain(n)


def make_messages(count: int, seed: int = 4) -> list[bytes]:
    """``count`` messages, the same ones for the same ``seed``."""
    writer = _Writer(seed)
    return [writer.message(n) for n in range(1, count + 1)]


def write_config(directory: Path, imap_port: int) -> Path:
    path = directory / "hayate.toml"
    path.write_text(
        f'hostname = "mx.{DOMAIN}"\n'
        f'data_dir = "{directory / "var"}"\n'
        f'local_domains = ["{DOMAIN}"]\n'
        f'log_level = "warning"\n'
        f"\n[listen]\n"
        f'imap = "127.0.0.1:{imap_port}"\n'
        f"\n[mailbox]\n"
        f"plaintext_auth = true\n",
        encoding="utf-8",
    )
    return path


async def _deliver(db: Path, messages: Sequence[bytes], batch: int) -> None:
    from hayate.store import open_store

    store = open_store("sqlite", db)
    await store.create()
    try:
        await store.migrate()
        await store.add_account(USER, PASSWORD)
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            await store.deliver_many([(USER, data) for data in chunk])
    finally:
        await store.close()


class HayateImap(ServerProcess):
    """``hayate serve`` with IMAP on 127.0.0.1:``port`` and one account holding the
    benchmark messages."""

    name = "Hayate"

    def __init__(
        self,
        messages: Sequence[bytes],
        base: Path | None = None,
        start_timeout: float = 60.0,
        batch: int = 200,
    ) -> None:
        self.user = USER
        self.password = PASSWORD
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hayate-imap-bench-", dir=base))
        self.config = write_config(self.root, self.port)
        self.log_path = self.root / "hayate.log"
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            (self.root / "var").mkdir()
            started = time.monotonic()
            asyncio.run(_deliver(self.root / "var" / "hayate.db", messages, batch))
            self.load_seconds = time.monotonic() - started
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [str(hayate_executable()), "serve", "-c", str(self.config)],
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            problem = wait_greeting(self.port, start_timeout, self.proc)
            if problem:
                raise RuntimeError(f"hayate serve: {problem}; log: {self.log_tail()}")
        except BaseException:
            self.close()
            raise

