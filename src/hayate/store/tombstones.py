"""Expunge tombstones (sans-I/O ops, see ``hayate.store.ops``): writing them, keeping at
most :data:`TOMBSTONES_KEPT` per folder, and answering "which UIDs vanished after modseq M"
when older tombstones are gone.

Every expunged UID gets a row ``expunged(mailbox_id, uid, modseq)`` stamped with the modseq
of its expunge; ``mailboxes.tombstones`` counts a folder's rows. Once a folder holds more
than ``TOMBSTONES_KEPT + TOMBSTONE_SLACK`` of them, the transaction that wrote the last ones
deletes the oldest, so that at most ``TOMBSTONES_KEPT`` remain (tombstones sharing a modseq
go together, so it may keep fewer), and raises ``mailboxes.vanished_floor`` to the highest
modseq it deleted. The slack makes pruning an occasional batch instead of a delete per
expunge; the expunge itself only adds to the counter in the statement that already updates
the folder's row. Callers hold the folder's row lock (as every expunge does), so pruning is
serialized with the folder's other changes.

Below the floor. UIDs are given out in order without gaps, so the UIDs ever expunged from
a folder are exactly those in ``[1, UIDNEXT)`` that it no longer holds. For a modseq below
the floor that complement is the answer: a superset of what vanished after the modseq, and
still true (every UID in it is gone). :func:`vanished_complement` builds it from the
folder's UIDs, read as one hex string (no row or object per message).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from hayate.store.ops import Op, Query

TOMBSTONES_KEPT = 10_000
TOMBSTONE_SLACK = 1_000  # pruning waits until a folder holds this many more than kept


def bury(folder_id: int, modseq: int, uids: Sequence[int]) -> Op[None]:
    """Tombstones for expunged UIDs, stamped with ``modseq``, the folder's new one."""
    yield Query(
        "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
        many=tuple((folder_id, uid, modseq) for uid in uids),
    )
    res = yield Query(
        "UPDATE mailboxes SET highestmodseq = ?, tombstones = tombstones + ? WHERE id = ?"
        " RETURNING tombstones",
        (modseq, len(uids), folder_id),
    )
    if res.rows:
        yield from prune_if_over(folder_id, int(res.rows[0][0]))


def bury_all(from_folder: int, modseq: int) -> Op[None]:
    """Tombstones for every message of ``from_folder`` (INBOX renamed away), stamped with
    ``modseq``; the caller already set the folder's highestmodseq."""
    res = yield Query(
        "INSERT INTO expunged (mailbox_id, uid, modseq)"
        " SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?",
        (modseq, from_folder),
    )
    if res.rowcount <= 0:
        return
    res = yield Query(
        "UPDATE mailboxes SET tombstones = tombstones + ? WHERE id = ? RETURNING tombstones",
        (res.rowcount, from_folder),
    )
    if res.rows:
        yield from prune_if_over(from_folder, int(res.rows[0][0]))


def prune_if_over(folder_id: int, count: int) -> Op[None]:
    if count > TOMBSTONES_KEPT + TOMBSTONE_SLACK:
        yield from prune(folder_id)


def prune(folder_id: int) -> Op[None]:
    """Keep the newest ``TOMBSTONES_KEPT`` tombstones of a folder (fewer when the cut falls
    inside one modseq) and raise its vanished floor to the highest modseq deleted."""
    res = yield Query(
        "SELECT modseq FROM expunged WHERE mailbox_id = ?"
        " ORDER BY modseq DESC LIMIT 1 OFFSET ?",
        (folder_id, TOMBSTONES_KEPT),
    )
    if res.rows:
        cutoff = int(res.rows[0][0])
        yield Query(
            "DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?", (folder_id, cutoff)
        )
        yield Query(
            "UPDATE mailboxes SET vanished_floor = ? WHERE id = ? AND vanished_floor < ?",
            (cutoff, folder_id, cutoff),
        )
    yield Query(  # counted afresh: the counter never drifts for long
        "UPDATE mailboxes SET tombstones ="
        " (SELECT count(*) FROM expunged WHERE mailbox_id = ?) WHERE id = ?",
        (folder_id, folder_id),
    )


# The folder's UIDs as one string of 8 hex digits per UID, ascending (what
# ``mailbox_ops.decode_hex_uids`` reads); a query parameter, not a correlated reference,
# so both engines evaluate it once and only when the CASE around it needs it.
HEX_UIDS = {
    "sqlite": "(SELECT group_concat(printf('%08x', uid), '') FROM"
    " (SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid))",
    "postgresql": "(SELECT string_agg(lpad(to_hex(uid), 8, '0'), '' ORDER BY uid)"
    " FROM messages WHERE mailbox_id = ?)",
}


def vanished_complement(present: array[int], uidnext: int) -> list[int]:
    """The UIDs in ``[1, uidnext)`` not in ``present`` (ascending), ascending."""
    out: list[int] = []
    expected = 1
    for uid in present:
        if uid > expected:
            out.extend(range(expected, min(uid, uidnext)))
        expected = uid + 1
    if expected < uidnext:
        out.extend(range(expected, uidnext))
    return out
