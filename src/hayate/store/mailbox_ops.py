"""The mailbox service's message transactions (sans-I/O ops, see ``hayate.store.ops``):
reading messages in batches, appends, flags, expunge, copy/move, change tracking and the
retention expunge. Folder-level ops live in ``hayate.store.folder_ops``.

Change tracking. A transaction that changes a folder's messages first locks the folder's
row (``UPDATE mailboxes ... RETURNING highestmodseq``), so changes to one folder are
serialized and commit in modseq order; it then takes ``highestmodseq + 1`` for all of its
changes and stamps it on the changed messages and on the tombstones (``expunged``) of the
UIDs it removed (kept bounded, see ``hayate.store.tombstones``). A transaction that turns
out to change nothing leaves the modseq alone. Reading ``highestmodseq`` together with the
changes in one statement (one snapshot) gives a consistent answer on both engines.

UID sets. Ranges become SQL conditions of at most ``MAX_PARAMS`` parameters each
(``uid IN (...)`` for single UIDs, ``uid BETWEEN ? AND ?`` for runs), so any set is read in
a few statements; reads page through a folder by UID (keyset), never by offset. Bulk reads
return the database's rows as they come (:data:`~hayate.store.base.MessageRow`): no object
per message in the store.
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from collections.abc import Sequence
from typing import Any, cast

from hayate.store.addresses import join_flags, split_flags
from hayate.store.base import (
    FlagMode,
    FolderChanges,
    MessageRow,
    NoSuchMailbox,
    QuotaExceeded,
    StoredMessage,
    UidRanges,
)
from hayate.store.folder_ops import DELETED, HAS_FLAG, MAX_PARAMS, SEEN, owner
from hayate.store.ops import Op, Query, forget_messages, insert_message
from hayate.store.tombstones import HEX_UIDS, bury, vanished_complement

_MESSAGE = "uid, modseq, internaldate, size, flags"
_CAS_ATTEMPTS = 5


def _message(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        int(row[0]), int(row[1]), float(row[2]), int(row[3]), split_flags(str(row[4]))
    )


# --------------------------------------------------------------------------- UID sets


def clip_after(ranges: UidRanges, after: int) -> UidRanges:
    """The part of ``ranges`` above ``after``."""
    return tuple((max(first, after + 1), last) for first, last in ranges if last > after)


def uid_conditions(ranges: UidRanges) -> list[tuple[str, tuple[int, ...]]]:
    """SQL conditions on ``uid`` that together cover ``ranges``, in ascending UID order,
    each with at most about ``MAX_PARAMS`` parameters."""
    out: list[tuple[str, tuple[int, ...]]] = []
    singles: list[int] = []
    spans: list[tuple[int, int]] = []

    def flush() -> None:
        parts: list[str] = []
        params: list[int] = []
        if singles:
            parts.append("uid IN (" + ", ".join("?" * len(singles)) + ")")
            params.extend(singles)
        for first, last in spans:
            parts.append("uid BETWEEN ? AND ?")
            params.extend((first, last))
        if parts:
            out.append(("(" + " OR ".join(parts) + ")", tuple(params)))
        singles.clear()
        spans.clear()

    for first, last in ranges:
        if first == last:
            singles.append(first)
        elif first < last:
            spans.append((first, last))
        if len(singles) + 2 * len(spans) >= MAX_PARAMS:
            flush()
    flush()
    return out


def _conditions(ranges: UidRanges | None) -> list[tuple[str, tuple[int, ...]]]:
    """Like uid_conditions, with ``None`` meaning every UID (one condition that is true)."""
    return [("1 = 1", ())] if ranges is None else uid_conditions(ranges)


# --------------------------------------------------------------------------- quota

def reserve_bytes(account_id: int, size: int) -> Op[None]:
    """Count ``size`` more bytes against the quota; QuotaExceeded (rolling the transaction
    back) when they do not fit."""
    res = yield Query(
        "UPDATE accounts SET used_bytes = used_bytes + ?"
        " WHERE id = ? AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes)"
        " RETURNING used_bytes",
        (size, account_id, size),
    )
    if not res.rows:
        res = yield Query(
            "SELECT address, quota_bytes, used_bytes FROM accounts WHERE id = ?", (account_id,)
        )
        address, quota, used = res.rows[0] if res.rows else (owner(account_id), 0, 0)
        raise QuotaExceeded(str(address), int(quota), int(used), size)


# --------------------------------------------------------------------------- reading


# SQLite: every UID of a folder as one string of 8 hex digits per UID, in UID order, so a
# single value crosses from the database instead of a row per message (3x faster at
# 100,000). PostgreSQL: one array (psycopg decodes it in C; faster than rows or text).
_SQLITE_HEX_UIDS = (
    "SELECT group_concat(printf('%08x', uid), '') FROM"
    " (SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid)"
)
_POSTGRES_UID_ARRAY = "SELECT array_agg(uid ORDER BY uid) FROM messages WHERE mailbox_id = ?"


def folder_uids(folder_id: int, dialect: str) -> Op[array[int]]:
    uids: array[int] = array("I")
    if dialect != "sqlite":
        res = yield Query(_POSTGRES_UID_ARRAY, (folder_id,))
        if res.rows and res.rows[0][0]:
            uids.fromlist(res.rows[0][0])
        return uids
    res = yield Query(_SQLITE_HEX_UIDS, (folder_id,))
    return decode_hex_uids(str(res.rows[0][0] or "")) if res.rows else uids


def decode_hex_uids(text: str) -> array[int]:
    """8 hex digits per UID → ascending ``array('I')``. SQLite does not promise the order
    of group_concat (it follows the index in practice), so it is checked."""
    uids: array[int] = array("I", bytes.fromhex(text))
    if sys.byteorder == "little":
        uids.byteswap()
    if any(map(operator.ge, uids, itertools.islice(uids, 1, None))):
        uids = array("I", sorted(set(uids)))
    return uids


def folder_messages(
    folder_id: int, ranges: UidRanges | None, after: int, limit: int | None, bodies: bool
) -> Op[list[MessageRow]]:
    """Messages above ``after`` (in ``ranges``), ascending, at most ``limit``: one
    statement per UID-set condition, each asking only for what is still missing."""
    if bodies:
        source = "messages JOIN message_bodies b ON b.id = body_id"
        columns = _MESSAGE + ", b.body"
    else:
        source, columns = "messages", _MESSAGE + ", NULL"
    out: list[MessageRow] = []
    conditions = _conditions(None if ranges is None else clip_after(ranges, after))
    for condition, params in conditions:
        want = None if limit is None else limit - len(out)
        if want is not None and want <= 0:
            break
        sql = (
            f"SELECT {columns} FROM {source} WHERE mailbox_id = ? AND uid > ?"
            f" AND {condition} ORDER BY uid"
        )
        args: tuple[Any, ...] = (folder_id, after, *params)
        if want is not None:
            sql += " LIMIT ?"
            args += (want,)
        res = yield Query(sql, args)
        out.extend(cast(list[MessageRow], res.rows))
    return out


def folder_bodies(folder_id: int, uids: Sequence[int]) -> Op[dict[int, bytes]]:
    out: dict[int, bytes] = {}
    wanted = sorted(set(uids))
    for start in range(0, len(wanted), MAX_PARAMS):
        chunk = tuple(wanted[start : start + MAX_PARAMS])
        res = yield Query(
            "SELECT uid, b.body FROM messages JOIN message_bodies b ON b.id = body_id"
            " WHERE mailbox_id = ? AND uid IN ("
            + ", ".join("?" * len(chunk)) + ")",
            (folder_id, *chunk),
        )
        for uid, body in res.rows:
            out[int(uid)] = bytes(body)
    return out


def folder_changes(folder_id: int, modseq: int, dialect: str) -> Op[FolderChanges | None]:
    """Changed messages, vanished UIDs and the folder's counters in one statement (one
    snapshot). Vanished: the tombstones above ``modseq``, or, when ``modseq`` is below the
    folder's vanished floor (older tombstones pruned), every UID below UIDNEXT the folder
    no longer holds (see ``hayate.store.tombstones``)."""
    res = yield Query(
        f"SELECT 0, {_MESSAGE} FROM messages WHERE mailbox_id = ? AND modseq > ?"
        " UNION ALL SELECT 1, uid, modseq, NULL, NULL, NULL FROM expunged"
        " WHERE mailbox_id = ? AND modseq > ?"
        " AND ? >= (SELECT vanished_floor FROM mailboxes WHERE id = ?)"
        " UNION ALL SELECT 2, uidnext, highestmodseq, NULL, NULL,"
        f" CASE WHEN ? < vanished_floor THEN coalesce({HEX_UIDS[dialect]}, '') END"
        " FROM mailboxes WHERE id = ?",
        (folder_id, modseq, folder_id, modseq, modseq, folder_id, modseq, folder_id,
         folder_id),
    )
    changed: list[StoredMessage] = []
    vanished: list[int] = []
    counters: tuple[int, int] | None = None
    present: str | None = None
    for row in res.rows:
        kind = int(row[0])
        if kind == 0:
            changed.append(_message(row[1:]))
        elif kind == 1:
            vanished.append(int(row[1]))
        else:
            counters = (int(row[2]), int(row[1]))
            present = None if row[5] is None else str(row[5])
    if counters is None:
        return None
    changed.sort(key=lambda m: m.uid)
    if present is not None:
        vanished = vanished_complement(decode_hex_uids(present), counters[1])
    else:
        vanished.sort()
    return FolderChanges(counters[0], counters[1], changed, vanished)


def folder_flag_sets(folder_id: int) -> Op[list[str]]:
    """The distinct stored flag strings of a folder, in the order of the lowest UID that
    has each (read from the metadata index alone)."""
    res = yield Query(
        "SELECT flags, min(uid) FROM messages WHERE mailbox_id = ? AND flags <> ''"
        " GROUP BY flags ORDER BY 2",
        (folder_id,),
    )
    return [str(row[0]) for row in res.rows]


def first_unseen(folder_id: int) -> Op[int | None]:
    res = yield Query(
        f"SELECT uid FROM messages WHERE mailbox_id = ? AND NOT {HAS_FLAG}"
        " ORDER BY uid LIMIT 1",
        (folder_id, SEEN),
    )
    return int(res.rows[0][0]) if res.rows else None


def claim_recent(folder_id: int) -> Op[int | None]:
    """Move the recent mark up to UIDNEXT (compare-and-set); where it was before."""
    for _ in range(_CAS_ATTEMPTS):
        res = yield Query(
            "SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (folder_id,)
        )
        if not res.rows:
            return None
        recent, uidnext = int(res.rows[0][0]), int(res.rows[0][1])
        if recent >= uidnext:
            return recent
        res = yield Query(
            "UPDATE mailboxes SET recent_uid = ? WHERE id = ? AND recent_uid = ? RETURNING id",
            (uidnext, folder_id, recent),
        )
        if res.rows:
            return recent
    return uidnext  # others keep claiming: nothing is recent to this session


# --------------------------------------------------------------------------- writing


def _lock_folder(account_id: int, folder_id: int) -> Op[int]:
    """Lock a folder of the account; its current highestmodseq. NoSuchMailbox if gone."""
    res = yield Query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq WHERE id = ? AND account = ?"
        " RETURNING highestmodseq",
        (folder_id, account_id),
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), f"#{folder_id}")
    return int(res.rows[0][0])


def append_message(
    account_id: int, name: str, data: bytes, flags: tuple[str, ...], internaldate: float
) -> Op[tuple[int, int]]:
    res = yield Query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
        " WHERE account = ? AND name = ? RETURNING id, uidvalidity, uidnext - 1, highestmodseq",
        (account_id, name),
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), name)
    folder_id, uidvalidity, uid, modseq = (int(v) for v in res.rows[0])
    yield from reserve_bytes(account_id, len(data))
    yield from insert_message(folder_id, uid, modseq, internaldate, join_flags(flags), data)
    return uidvalidity, uid


def merge_flags(
    current: tuple[str, ...], mode: FlagMode, flags: tuple[str, ...]
) -> tuple[str, ...]:
    """The flags after a STORE; flags compare case-insensitively, the first spelling stays."""
    if mode == "set":
        return flags
    if mode == "add":
        have = {f.casefold() for f in current}
        return current + tuple(f for f in flags if f.casefold() not in have)
    drop = {f.casefold() for f in flags}
    return tuple(f for f in current if f.casefold() not in drop)


def store_flags(
    account_id: int,
    folder_id: int,
    ranges: UidRanges,
    mode: FlagMode,
    flags: tuple[str, ...],
    unchanged_since: int | None,
) -> Op[tuple[list[StoredMessage], list[int]]]:
    current = yield from _lock_folder(account_id, folder_id)
    modseq = current + 1
    changed: list[StoredMessage] = []
    refused: list[int] = []
    for condition, params in uid_conditions(ranges):
        res = yield Query(
            f"SELECT {_MESSAGE} FROM messages WHERE mailbox_id = ? AND {condition}"
            " ORDER BY uid",
            (folder_id, *params),
        )
        for row in res.rows:
            message = _message(row)
            if unchanged_since is not None and message.modseq > unchanged_since:
                refused.append(message.uid)
                continue
            after = merge_flags(message.flags, mode, flags)
            if {f.casefold() for f in after} != {f.casefold() for f in message.flags}:
                changed.append(
                    StoredMessage(message.uid, modseq, message.internaldate, message.size, after)
                )
    if changed:
        yield Query(
            "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
            many=tuple((join_flags(m.flags), modseq, folder_id, m.uid) for m in changed),
        )
        yield Query(
            "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, folder_id)
        )
    return changed, refused


def expunge(
    account_id: int, folder_id: int, ranges: UidRanges | None, flagged_only: bool = True
) -> Op[list[int]]:
    """Remove the messages flagged \\Deleted in ``ranges`` (every message in ``ranges``
    when not ``flagged_only``: POP3's DELE), with tombstones, in one transaction."""
    current = yield from _lock_folder(account_id, folder_id)
    removed: list[tuple[int, int, int]] = []
    flag_test, flag_params = (f"{HAS_FLAG} AND ", (DELETED,)) if flagged_only else ("", ())
    for condition, params in _conditions(ranges):
        res = yield Query(
            f"DELETE FROM messages WHERE mailbox_id = ? AND {flag_test}{condition}"
            " RETURNING uid, size, body_id",
            (folder_id, *flag_params, *params),
        )
        removed.extend((int(uid), int(size), int(body)) for uid, size, body in res.rows)
    if not removed:
        return []
    uids = sorted(uid for uid, _, _ in removed)
    yield from bury(folder_id, current + 1, uids)
    yield from forget_messages(
        account_id, sum(size for _, size, _ in removed), [body for _, _, body in removed]
    )
    return uids


def copy_messages(
    account_id: int, folder_id: int, ranges: UidRanges, target: str, move: bool
) -> Op[tuple[int, list[tuple[int, int]]]]:
    """Copy (or move) in one transaction (``INSERT ... SELECT``): the new rows point at
    the same bodies (no body is copied); a move then deletes the old rows, its bodies
    stay referenced by the new ones."""
    res = yield Query(
        "SELECT id FROM mailboxes WHERE account = ? AND name = ?", (account_id, target)
    )
    if not res.rows:
        raise NoSuchMailbox(owner(account_id), target)
    target_id = int(res.rows[0][0])
    source_modseq = 0
    for locked in sorted({folder_id, target_id}):  # the lock order: ascending ids
        modseq = yield from _lock_folder(account_id, locked)
        if locked == folder_id:
            source_modseq = modseq
    conditions = uid_conditions(ranges)
    found: list[list[tuple[int, int]]] = []  # (uid, size) per condition
    for condition, params in conditions:
        res = yield Query(
            f"SELECT uid, size FROM messages WHERE mailbox_id = ? AND {condition} ORDER BY uid",
            (folder_id, *params),
        )
        found.append([(int(uid), int(size)) for uid, size in res.rows])
    count = sum(len(rows) for rows in found)
    if not count:
        res = yield Query("SELECT uidvalidity FROM mailboxes WHERE id = ?", (target_id,))
        return int(res.rows[0][0]), []
    res = yield Query(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING uidnext, highestmodseq, uidvalidity",
        (count, target_id),
    )
    uidnext, target_modseq, uidvalidity = (int(v) for v in res.rows[0])
    first_new = uidnext - count
    if not move:
        yield from reserve_bytes(account_id, sum(size for rows in found for _, size in rows))
    pairs: list[tuple[int, int]] = []
    for (condition, params), rows in zip(conditions, found, strict=True):
        if not rows:
            continue
        base = first_new + len(pairs)
        highest = rows[-1][0]  # new UIDs of a copy into the same folder lie above it
        yield Query(
            "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, flags,"
            " body_id) SELECT ?, ? + row_number() OVER (ORDER BY uid), ?, internaldate, size,"
            f" flags, body_id FROM messages WHERE mailbox_id = ? AND uid <= ? AND {condition}",
            (target_id, base - 1, target_modseq, folder_id, highest, *params),
        )
        pairs.extend((uid, base + i) for i, (uid, _) in enumerate(rows))
        if move:
            yield Query(
                f"DELETE FROM messages WHERE mailbox_id = ? AND uid <= ? AND {condition}",
                (folder_id, highest, *params),
            )
    if move:
        if folder_id == target_id:
            source_modseq = target_modseq
        yield from bury(folder_id, source_modseq + 1, [old for old, _ in pairs])
    return uidvalidity, pairs


def expunge_older(folder_id: int, before: float, limit: int) -> Op[int]:
    """Retention: expunge up to ``limit`` messages with an internal date before ``before``."""
    res = yield Query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq WHERE id = ?"
        " RETURNING highestmodseq, account",
        (folder_id,),
    )
    if not res.rows:
        return 0
    current, account_id = int(res.rows[0][0]), int(res.rows[0][1])
    res = yield Query(
        "DELETE FROM messages WHERE mailbox_id = ? AND uid IN (SELECT uid FROM messages"
        " WHERE mailbox_id = ? AND internaldate < ? ORDER BY uid LIMIT ?)"
        " RETURNING uid, size, body_id",
        (folder_id, folder_id, before, limit),
    )
    if not res.rows:
        return 0
    uids = sorted(int(r[0]) for r in res.rows)
    yield from bury(folder_id, current + 1, uids)
    yield from forget_messages(
        account_id, sum(int(r[1]) for r in res.rows), [int(r[2]) for r in res.rows]
    )
    return len(uids)

