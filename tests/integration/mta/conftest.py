"""Fixtures for end-to-end tests of a real ``hayate serve`` process: waiting for an outcome,
sending through its SMTP port, reading the sink's dumps and a local mailbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.support.sink import SinkMessage, SmtpSink

from hayate.store import open_store


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """The first true value ``predicate`` returns, polled every 50 ms for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def sink_messages(sink: SmtpSink, count: int, timeout: float = 10.0) -> list[SinkMessage]:
    """The sink's dumps once ``count`` of them are completely written."""

    def complete() -> list[SinkMessage] | None:
        got = sink.messages()
        if len(got) >= count and all(m.recipients and m.content for m in got):
            return got
        return None

    got: list[SinkMessage] = wait_for(complete, timeout, f"{count} message(s) at the sink")
    return got


def send(port: int, sender: str, rcpts: list[str], data: bytes,
         source: str = "127.0.0.1") -> None:
    """One SMTP transaction to 127.0.0.1:``port``, from the local address ``source``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as client:
        client.sendmail(sender, rcpts, data)


def mailbox(data_dir: Path, address: str) -> list[EmailMessage]:
    """The messages in ADDRESS's INBOX, read through the store like the IMAP server will."""

    async def read() -> list[bytes]:
        store = open_store("sqlite", data_dir / "hayate.db")
        async with store:
            metas = await store.list_messages(address)
            out = []
            for meta in metas:
                raw = await store.fetch_message(address, "INBOX", meta.uid)
                assert raw is not None
                out.append(raw)
            return out

    return [
        email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
        for raw in asyncio.run(read())
    ]
