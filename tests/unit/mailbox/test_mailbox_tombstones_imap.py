"""Pruned tombstones seen over IMAP (the in-process server of the IMAP harness, a raw
socket client): a QRESYNC SELECT from a modseq below the folder's vanished floor gets a
VANISHED (EARLIER) covering every expunged UID, one at or above it exactly the recent
ones, and a session that stayed selected through the pruning gets an EXPUNGE for each
message it knew and nothing for UIDs it never saw."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.imap.imap_harness import imap_server, message, tagged_status
from tests.unit.store.store_helpers import raw_rows

from hayate.store import tombstones


@pytest.fixture(autouse=True)
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tombstones, "TOMBSTONES_KEPT", 3)
    monkeypatch.setattr(tombstones, "TOMBSTONE_SLACK", 1)


def _vanished(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* VANISHED")]


async def test_qresync_select_below_the_floor_vanishes_every_expunged_uid(
    tmp_path: Path,
) -> None:
    async with imap_server(tmp_path) as harness:
        for n in range(1, 13):
            await harness.deliver(message(f"message {n}"))
        amy = harness.mailboxes()
        inbox = await amy.folder("INBOX")
        start, _ = await amy.highestmodseq(inbox)

        watching = await harness.login()
        assert tagged_status(await watching.command("SELECT INBOX")) == b"OK"

        after: dict[int, int] = {}
        for uid in range(1, 9):
            assert await amy.remove(inbox, ((uid, uid),)) == [uid]
            after[uid] = (await amy.highestmodseq(inbox))[0]
        [(floor,)] = await raw_rows(
            harness.store, "SELECT vanished_floor FROM mailboxes WHERE id = ?", (inbox.id,)
        )
        assert floor == after[4]  # tombstones 5-8 remain

        client = await harness.login()
        assert tagged_status(await client.command("ENABLE QRESYNC")) == b"OK"
        lines = await client.command(f"SELECT INBOX (QRESYNC ({inbox.uidvalidity} {start}))")
        assert tagged_status(lines) == b"OK"
        assert _vanished(lines) == [b"* VANISHED (EARLIER) 1:8"]
        assert tagged_status(await client.command("CLOSE")) == b"OK"
        # With the UIDs the client knows: only those are listed.
        lines = await client.command(
            f"SELECT INBOX (QRESYNC ({inbox.uidvalidity} {start} 2,4,6,9:12))"
        )
        assert _vanished(lines) == [b"* VANISHED (EARLIER) 2,4,6"]
        assert tagged_status(await client.command("CLOSE")) == b"OK"
        # At the floor: exactly the expunges after it.
        lines = await client.command(
            f"SELECT INBOX (QRESYNC ({inbox.uidvalidity} {after[6]}))"
        )
        assert _vanished(lines) == [b"* VANISHED (EARLIER) 7:8"]
        lines = await client.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {start} VANISHED)")
        assert tagged_status(lines) == b"OK"
        assert _vanished(lines) == [b"* VANISHED (EARLIER) 1:8"]

        # The session selected since before: its view (modseq below the floor) shrinks by
        # one EXPUNGE per message it had, highest sequence number first.
        lines = await watching.command("NOOP")
        assert tagged_status(lines) == b"OK"
        expunges = [line for line in lines if line.endswith(b" EXPUNGE")]
        assert len(expunges) == 8
        lines = await watching.command("UID SEARCH ALL")
        assert b"* SEARCH 9 10 11 12" in lines

