"""A 100,000-message folder on both engines (tiny bodies, inserted in bulk with SQL): it
opens (uids, status) and scans with bodies in bounded batches, and the usual per-command
calls work on it. Batch sizes are asserted, not timings."""

from __future__ import annotations

from array import array

from tests.unit.store.store_helpers import raw_rows

from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlite import SqliteStore
from hayate.store.sqlstore import SqlStore

COUNT = 100_000
# Bodies first (ids 1..COUNT in a fresh store), then the messages pointing at them.
SQLITE_FILL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " INSERT INTO message_bodies (body) SELECT CAST('message ' || i AS BLOB) FROM n",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, flags, body_id)"
    " SELECT ?, i, i + 1, 1700000000.0 + i, length(CAST('message ' || i AS BLOB)),"
    " CASE WHEN i % 3 = 0 THEN '' ELSE '\\Seen' END, i FROM n",
)
POSTGRES_FILL = (
    "INSERT INTO message_bodies (body) SELECT convert_to('message ' || i, 'UTF8')"
    " FROM generate_series(1, ?) AS i",
    "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, flags, body_id)"
    " SELECT ?, i, i + 1, 1700000000.0 + i, octet_length('message ' || i),"
    " CASE WHEN mod(i, 3) = 0 THEN '' ELSE '\\Seen' END, i"
    " FROM generate_series(1, ?) AS i",
)


async def _fill(store: SqlStore, folder_id: int) -> int:
    if isinstance(store, SqliteStore):
        await raw_rows(store, SQLITE_FILL[0], (COUNT,))
        await raw_rows(store, SQLITE_FILL[1], (COUNT, folder_id))
    else:
        await raw_rows(store, POSTGRES_FILL[0], (COUNT,))
        await raw_rows(store, POSTGRES_FILL[1], (folder_id, COUNT))
    assert await raw_rows(store, "SELECT min(id), max(id) FROM message_bodies") == [(1, COUNT)]
    [(size,)] = await raw_rows(
        store, "SELECT sum(size) FROM messages WHERE mailbox_id = ?", (folder_id,)
    )
    await raw_rows(
        store, "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
        (COUNT + 1, COUNT + 1, folder_id),
    )
    await raw_rows(store, "UPDATE accounts SET used_bytes = ?", (int(size),))
    return int(size)


async def test_a_100k_folder_opens_and_scans_in_bounded_batches(
    store: SqlStore, amy: StoreMailboxes
) -> None:
    inbox = await amy.folder("INBOX")
    size = await _fill(store, inbox.id)
    uids = await amy.uids(inbox)
    assert isinstance(uids, array) and len(uids) == COUNT
    assert uids[0] == 1 and uids[-1] == COUNT
    status = await amy.status("INBOX")
    assert (status.messages, status.unseen, status.size, status.deleted) == (
        COUNT, COUNT // 3, size, 0,
    )
    assert status.recent == COUNT and status.uidnext == COUNT + 1
    assert await amy.first_unseen_uid(inbox) == 3
    batches = 0
    count = 0
    async for batch in amy.scan(inbox, bodies=True, batch=1000):
        assert 0 < len(batch) <= 1000
        info, body = batch[-1]
        assert body == b"message %d" % info.uid
        batches += 1
        count += len(batch)
    assert (batches, count) == (COUNT // 1000, COUNT)
    # What a session does per command stays cheap and right on a big folder.
    [info] = await amy.messages(inbox, ((77_777, 77_777),))
    assert info.flags == frozenset({"\\Seen"}) and await amy.body(inbox, 77_777) == (
        b"message 77777"
    )
    changed, _ = await amy.store_flags(inbox, ((99_999, 100_000),), "add", ["\\Deleted"])
    assert [m.uid for m in changed] == [99_999, 100_000]
    changes = await amy.changes_since(inbox, COUNT + 1)
    assert [m.uid for m in changes.changed] == [99_999, 100_000]
    assert await amy.expunge(inbox) == [99_999, 100_000]
    assert (await amy.status("INBOX")).messages == COUNT - 2
    assert await amy.append("INBOX", b"one more") == (inbox.uidvalidity, COUNT + 1)
