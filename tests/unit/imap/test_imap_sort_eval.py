"""SORT (RFC 5256) evaluated against a real SQLite store through StoreMailboxes."""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.clock import FakeClock, clock
from tests.support.store import sqlite_store

from hayate.imap.commands import Sort
from hayate.imap.parser import CommandReader
from hayate.imap.sort import sort
from hayate.mailbox.service import StoreMailboxes

__all__ = ["clock"]

AMY = "amy@example.com"


def day(d: int) -> float:
    return float(calendar.timegm((2024, 2, d, 10, 0, 0)))


MESSAGES: list[tuple[bytes, float]] = [
    (b"Date: Sat, 3 Feb 2024 12:00:00 +0000\r\nFrom: Zoe <b@example.com>\r\n"
     b"To: carol@example.com\r\nSubject: Re: beta\r\n\r\n" + b"x" * 50 + b"\r\n", day(2)),
    (b"Date: Thu, 1 Feb 2024 08:00:00 +0000\r\nFrom: adam <z@example.com>\r\n"
     b"To: Bob <bob@example.com>\r\nCc: x@example.com\r\nSubject: alpha\r\n\r\n"
     + b"x" * 10 + b"\r\n", day(3)),
    (b"From: c@example.com\r\nSubject: [list] Fwd: Beta (fwd)\r\n\r\n" + b"x" * 300 + b"\r\n",
     day(1)),
    (b"Date: Fri, 2 Feb 2024 08:00:00 +0000\r\nFrom: =?UTF-8?Q?Bea?= <a@example.com>\r\n"
     b"Subject: gamma\r\n\r\n" + b"x" * 200 + b"\r\n", day(4)),
    (b"Date: Thu, 1 Feb 2024 08:00:00 +0000\r\nFrom: y@example.com\r\n"
     b"Subject: Alpha\r\n\r\n" + b"x" * 100 + b"\r\n", day(5)),
]


@pytest.fixture
async def amy(tmp_path: Path, clock: FakeClock) -> AsyncIterator[StoreMailboxes]:
    async with sqlite_store(tmp_path / "hayate.db", clock) as store:
        await store.add_account(AMY, "pw")
        box = StoreMailboxes(store, AMY)
        for data, when in MESSAGES:
            await box.append("INBOX", data, (), when)
        yield box


async def run(box: StoreMailboxes, arguments: str) -> list[int]:
    reader = CommandReader()
    reader.feed(b"a SORT " + arguments.encode() + b"\r\n")
    command = reader.next()
    assert isinstance(command, Sort), command
    inbox = await box.folder("INBOX")
    uids = list(await box.uids(inbox))
    return await sort(box, inbox, uids, command.criteria, command.key,
                      lambda uid: uid >= 99, day(9))


BY_SIZE = [uid for _, uid in sorted((len(d), i + 1) for i, (d, _) in enumerate(MESSAGES))]

CASES = [
    ("(ARRIVAL) UTF-8 ALL", [3, 1, 2, 4, 5]),
    ("(REVERSE ARRIVAL) UTF-8 ALL", [5, 4, 2, 1, 3]),
    # UID 3 has no Date: its internal date (1 Feb 10:00) stands in.
    ("(DATE) UTF-8 ALL", [2, 5, 3, 4, 1]),
    ("(SUBJECT) UTF-8 ALL", [2, 5, 1, 3, 4]),
    # REVERSE flips the order of the keys; equal keys stay in sequence order.
    ("(REVERSE SUBJECT) UTF-8 ALL", [4, 1, 3, 2, 5]),
    ("(FROM) UTF-8 ALL", [4, 1, 3, 5, 2]),
    ("(DISPLAYFROM) UTF-8 ALL", [2, 4, 3, 5, 1]),
    ("(TO) UTF-8 ALL", [3, 4, 5, 2, 1]),
    ("(CC) UTF-8 ALL", [1, 3, 4, 5, 2]),
    ("(SIZE) UTF-8 ALL", BY_SIZE),
    ("(REVERSE SIZE) UTF-8 ALL", BY_SIZE[::-1]),
    ("(SUBJECT REVERSE ARRIVAL) UTF-8 ALL", [5, 2, 1, 3, 4]),
    ("(ARRIVAL) UTF-8 NOT SUBJECT alpha", [3, 1, 4]),
    ("(DATE) US-ASCII UID 1:2", [2, 1]),
    ("(SUBJECT) UTF-8 SUBJECT nothing", []),
]


@pytest.mark.parametrize(("arguments", "expected"), CASES, ids=[c for c, _ in CASES])
async def test_sort(amy: StoreMailboxes, arguments: str, expected: list[int]) -> None:
    assert await run(amy, arguments) == expected
