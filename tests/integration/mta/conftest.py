"""Fixtures for end-to-end tests of a real ``hayate serve`` process."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from hayate.store import open_store


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
