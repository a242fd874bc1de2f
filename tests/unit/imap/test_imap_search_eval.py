"""SEARCH evaluated against a real SQLite store through StoreMailboxes."""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from tests.support.clock import FakeClock, clock
from tests.support.store import sqlite_store

from hayate.imap import search as S
from hayate.imap.commands import Search, SearchKey
from hayate.imap.parser import CommandReader
from hayate.mailbox.model import Folder, MessageInfo, UidRanges
from hayate.mailbox.service import StoreMailboxes

__all__ = ["clock"]

AMY = "amy@example.com"


def day(d: int, hour: int = 10) -> float:
    return float(calendar.timegm((2024, 2, d, hour, 0, 0)))


MESSAGES: list[tuple[bytes, list[str], float]] = [
    (  # UID 1
        b"Date: Thu, 1 Feb 2024 09:00:00 +0000\r\nFrom: Alice <alice@example.com>\r\n"
        b"To: Bob <bob@example.org>\r\nSubject: Hello world\r\n\r\nfirst message plain\r\n",
        ["\\Seen"], day(1),
    ),
    (  # UID 2
        b"Date: Fri, 2 Feb 2024 23:30:00 -0500\r\nFrom: carol@example.net\r\n"
        b"To: amy@example.com\r\nCc: Dave <dave@example.com>\r\n"
        b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus Berlin\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"VHNjaMO8c3MsIGJpcyBiYWxkIQ==\r\n",
        ["\\Flagged", "$Work"], day(2),
    ),
    (  # UID 3
        b"Date: Sat, 3 Feb 2024 08:00:00 +0100\r\nFrom: Billing <billing@shop.example>\r\n"
        b"To: amy@example.com\r\nBcc: erin@example.com\r\nSubject: Re: your invoice\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>Your <b>INVOICE</b> number 42</p>\r\n"
        b"--b--\r\n" + b"X" * 3000 + b"\r\n",
        ["\\Deleted", "\\Answered"], day(3),
    ),
    (  # UID 4
        b"From: Zed <zed@example.com>\r\nTo: amy@example.com\r\n"
        b"Subject: [list] Fwd: Hello world\r\n\r\nno date here\r\n",
        ["\\Draft"], day(4),
    ),
    (  # UID 5
        b"Date: Mon, 5 Feb 2024 12:00:00 +0000\r\nFrom: Yves <yves@example.fr>\r\n"
        b"To: amy@example.com\r\nX-Spam: yes\r\nSubject: caf\xe9\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nun caf=E9 cr=E8me\r\n",
        ["$Junk"], day(5),
    ),
]
NOW = day(6)


class SpyMailboxes(StoreMailboxes):
    """The real service, recording how it was scanned."""

    def __init__(self, store: object, address: str) -> None:
        super().__init__(store, address)  # type: ignore[arg-type]
        self.scans: list[tuple[UidRanges | None, bool, int]] = []
        self.largest_batch = 0

    async def scan(
        self, folder: Folder, uids: UidRanges | None = None, *, bodies: bool = False,
        batch: int = 500,
    ) -> AsyncIterator[list[tuple[MessageInfo, bytes | None]]]:
        self.scans.append((uids, bodies, batch))
        async for rows in super().scan(folder, uids, bodies=bodies, batch=batch):
            self.largest_batch = max(self.largest_batch, len(rows))
            yield rows


@pytest.fixture
async def amy(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SpyMailboxes]:
    async with sqlite_store(tmp_path / "hayate.db", clock) as store:
        await store.add_account(AMY, "pw")
        box = SpyMailboxes(store, AMY)
        for data, flags, when in MESSAGES:
            await box.append("INBOX", data, flags, when)
        yield box


def parse_key(criteria: str) -> SearchKey:
    reader = CommandReader()
    reader.feed(b"a SEARCH " + criteria.encode("utf-8") + b"\r\n")
    command = reader.next()
    assert isinstance(command, Search), command
    return command.key


def recent_from(first: int) -> S.RecentTest:
    """UIDs from ``first`` up are \\Recent."""
    return lambda uid: uid >= first


FROM_4 = recent_from(4)


async def run(box: SpyMailboxes, criteria: str, *, view: Sequence[int] | None = None,
              recent: S.RecentTest = FROM_4) -> list[int]:
    inbox = await box.folder("INBOX")
    uids = list(await box.uids(inbox)) if view is None else list(view)
    return await S.search(box, inbox, uids, parse_key(criteria), recent, NOW)


CASES = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("SEEN", [1]), ("UNSEEN", [2, 3, 4, 5]),
    ("FLAGGED", [2]), ("UNFLAGGED", [1, 3, 4, 5]),
    ("DELETED", [3]), ("UNDELETED", [1, 2, 4, 5]),
    ("ANSWERED", [3]), ("UNANSWERED", [1, 2, 4, 5]),
    ("DRAFT", [4]), ("UNDRAFT", [1, 2, 3, 5]),
    ("KEYWORD $work", [2]), ("UNKEYWORD $Work", [1, 3, 4, 5]), ("KEYWORD $Nope", []),
    ("RECENT", [4, 5]), ("OLD", [1, 2, 3]), ("NEW", [4, 5]),
    ("LARGER 2000", [3]), ("SMALLER 200", [1, 4]),
    ("BEFORE 3-Feb-2024", [1, 2]), ("ON 3-Feb-2024", [3]), ("SINCE 4-Feb-2024", [4, 5]),
    # The Date field's own day: 2 Feb 23:30 -0500 is 2 Feb, although 3 Feb in UTC.
    ("SENTON 2-Feb-2024", [2]), ("SENTBEFORE 3-Feb-2024", [1, 2]),
    ("SENTSINCE 3-Feb-2024", [3, 5]),  # UID 4 has no Date: no SENT* key matches it
    ("OLDER 250000", [1, 2, 3]), ("YOUNGER 100000", [5]),
    ("FROM alice", [1]), ("FROM EXAMPLE.COM", [1, 4]), ("TO bob", [1]), ("CC dave", [2]),
    ("BCC erin", [3]), ("SUBJECT hello", [1, 4]), ('SUBJECT "grüße"', [2]),
    ('SUBJECT "café"', [5]), ('HEADER X-Spam ""', [5]), ("HEADER x-spam YES", [5]),
    ("HEADER X-Spam no", []),
    ("BODY invoice", [3]), ('BODY "tschüss"', [2]), ('BODY "CRÈME"', [5]),
    ("BODY Alice", []), ("TEXT Alice", [1]), ('TEXT "TSCHÜSS"', [2]),
    ("UID 2:3", [2, 3]), ("UID 4:*", [4, 5]), ("UID *", [5]), ("UID 9:*", [5]),
    ("2,4", [2, 4]), ("3:*", [3, 4, 5]), ("*", [5]),
    ("NOT SEEN", [2, 3, 4, 5]), ("OR SEEN FLAGGED", [1, 2]),
    ("OR (FROM alice) (BODY invoice)", [1, 3]),
    ("UNSEEN UNDELETED SINCE 2-Feb-2024", [2, 4, 5]),
    ("(OR DRAFT DELETED) NOT BODY date", [3]),
    ("NOT (SEEN OR FLAGGED DRAFT)", [1, 2, 3, 4, 5]),
    ("NOT (OR FLAGGED DRAFT)", [1, 3, 5]),
    ("UID 1:4 TEXT example.com", [1, 2, 3, 4]),
]


@pytest.mark.parametrize(("criteria", "expected"), CASES, ids=[c for c, _ in CASES])
async def test_search_key(amy: SpyMailboxes, criteria: str, expected: list[int]) -> None:
    assert await run(amy, criteria) == expected


async def test_charset_decoded_strings_search(amy: SpyMailboxes) -> None:
    reader = CommandReader()
    reader.feed(b"a SEARCH CHARSET ISO-8859-1 BODY {5+}\r\ncr\xe8me\r\n")
    command = reader.next()
    assert isinstance(command, Search)
    inbox = await amy.folder("INBOX")
    assert await S.search(amy, inbox, [1, 2, 3, 4, 5], command.key, recent_from(6),
                          NOW) == [5]


async def test_only_the_sessions_view_is_searched(amy: SpyMailboxes) -> None:
    # The session knows UIDs 1, 2, 3 and 5 (4 was expunged by it earlier, say); a new
    # message (UID 6) arrived but was not announced yet.
    await amy.append("INBOX", b"Subject: late\r\n\r\nhello\r\n", (), day(5))
    assert await run(amy, "ALL", view=[1, 2, 3, 5]) == [1, 2, 3, 5]
    assert await run(amy, "4", view=[1, 2, 3, 5]) == [5]  # sequence 4 is UID 5 here
    assert await run(amy, "*", view=[1, 2, 3, 5]) == [5]
    assert await run(amy, "UID *", view=[1, 2, 3, 5]) == [5]
    assert await run(amy, "ALL", view=[]) == []


async def test_expunged_messages_in_the_view_do_not_match(amy: SpyMailboxes) -> None:
    inbox = await amy.folder("INBOX")
    assert await amy.expunge(inbox) == [3]
    assert await run(amy, "ALL", view=[1, 2, 3, 4, 5]) == [1, 2, 4, 5]


async def test_metadata_keys_scan_without_bodies(amy: SpyMailboxes) -> None:
    await run(amy, "UNSEEN LARGER 10 NOT KEYWORD x")
    assert [(bodies, batch) for _, bodies, batch in amy.scans] == [(False, S.METADATA_BATCH)]
    amy.scans.clear()
    await run(amy, "UNSEEN SUBJECT x")
    assert [(bodies, batch) for _, bodies, batch in amy.scans] == [(True, S.BODY_BATCH)]


async def test_uid_and_sequence_keys_narrow_the_scan(amy: SpyMailboxes) -> None:
    await run(amy, "UID 2:3 BODY x")
    assert amy.scans[-1][0] == ((2, 3),)
    await run(amy, "2:3 UID 3:* TEXT x")
    assert amy.scans[-1][0] == ((3, 3),)
    assert await run(amy, "1 UID 2") == []
    await run(amy, "OR UID 1 UID 2")
    assert amy.scans[-1][0] == ((1, 5),)  # OR does not narrow


async def test_modseq_search_and_highest_modseq(amy: SpyMailboxes) -> None:
    inbox = await amy.folder("INBOX")
    changed, _ = await amy.store_flags(inbox, ((2, 2),), "add", ["\\Seen"])
    [info] = changed
    result = await S.search_detailed(amy, inbox, [1, 2, 3, 4, 5], parse_key(
        f"MODSEQ {info.modseq}"), recent_from(6), NOW)
    assert result == S.SearchResult([2], info.modseq)
    assert S.uses_modseq(parse_key("OR SEEN MODSEQ 5"))
    assert not S.uses_modseq(parse_key("SEEN"))


async def test_large_folder_text_search_stays_in_batches(amy: SpyMailboxes) -> None:
    for number in range(1200):
        word = b"needle" if number % 97 == 0 else b"hay"
        await amy.append("INBOX", b"Subject: n%d\r\n\r\n%s\r\n" % (number, word), (), day(5))
    inbox = await amy.folder("INBOX")
    uids = list(await amy.uids(inbox))
    found = await S.search(amy, inbox, uids, parse_key("BODY needle"), recent_from(9999),
                           NOW)
    assert found == [6 + n for n in range(1200) if n % 97 == 0]
    assert amy.largest_batch <= S.BODY_BATCH


async def test_recent_old_and_new_follow_every_recent_range(amy: SpyMailboxes) -> None:
    # UIDs 1:2 and 4:5 are recent to this session; 3 was claimed by another session.
    def recent(uid: int) -> bool:
        return uid <= 2 or 4 <= uid <= 5

    assert await run(amy, "RECENT", recent=recent) == [1, 2, 4, 5]
    assert await run(amy, "OLD", recent=recent) == [3]
    assert await run(amy, "NEW", recent=recent) == [2, 4, 5]  # UID 1 is \Seen
    assert await run(amy, "NOT RECENT", recent=recent) == [3]


def test_search_response_lines() -> None:
    assert S.search_response([]) == b"* SEARCH\r\n"
    assert S.search_response([2, 5, 9]) == b"* SEARCH 2 5 9\r\n"
    assert S.search_response([2, 5], 917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert S.search_response([], 5) == b"* SEARCH\r\n"


def test_esearch_response_lines() -> None:
    all_four = ("MIN", "MAX", "COUNT", "ALL")
    assert S.esearch_response("a1", True, [2, 3, 4, 9], all_four) == (
        b'* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 4 ALL 2:4,9\r\n')
    assert S.esearch_response("a2", False, [], all_four) == (
        b'* ESEARCH (TAG "a2") COUNT 0\r\n')
    assert S.esearch_response("a3", False, [7], ("ALL",), 12) == (
        b'* ESEARCH (TAG "a3") ALL 7 MODSEQ 12\r\n')
    assert S.esearch_response("a4", True, [], ("MIN",)) == b'* ESEARCH (TAG "a4") UID\r\n'
