"""IMAP commands on the messages of the selected folder: FETCH (CONDSTORE CHANGEDSINCE,
QRESYNC VANISHED), STORE (UNCHANGEDSINCE), COPY and MOVE (UIDPLUS COPYUID), EXPUNGE and
UID EXPUNGE, SEARCH (with RFC 4731 ESEARCH results), SORT, CLOSE and UNSELECT.

Handlers take the session and the parsed command, write their untagged data through the
session's connection and return the tagged line (see ``hayate.imap.session``).

Strategies:
- Sequence sets become UID ranges through the session's ``SelectedFolder`` (a message
  number above EXISTS is a BAD; a UID set is clipped to the UIDs already announced).
- FETCH reads the range in bounded batches (see ``_batches``): metadata pages of
  ``META_BATCH`` when no item needs the message, one query for a single message (mbsync's
  ``UID FETCH n (BODY.PEEK[])``), otherwise bodies in groups of at most ``BODY_BATCH``
  messages / ``BODY_BATCH_BYTES``. Each message is rendered by ``fetch.render`` and the
  connection writes and paces the output after every batch, so memory stays bounded.
  The implicit ``\\Seen`` of BODY[] / RFC822 costs one ``store_flags`` per batch and adds
  FLAGS to those messages' responses.
- Flag changes this session makes are remembered in ``SelectedFolder.reported`` so that the
  next poll does not repeat them; other sessions' changes come from the poll.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hayate.imap import commands as C
from hayate.imap import fetch as fetch_render
from hayate.imap import search, sort
from hayate.imap.response import ranges_set, sequence_set, tagged
from hayate.imap.selected import SelectedFolder
from hayate.imap.uidranges import in_ranges
from hayate.mailbox import mime
from hayate.mailbox.model import (
    SEEN,
    FolderNotFound,
    MessageInfo,
    OverQuota,
    UidRanges,
    ranges_of,
)

if TYPE_CHECKING:
    from hayate.imap.session import Handler, ImapSession

BODY_BATCH = 64  # messages per query when bodies are read...
BODY_BATCH_BYTES = 4 * 1024 * 1024  # ...and at most this many bytes (one bigger message)
META_BATCH = 1000  # messages per query for metadata only
READ_ONLY = "Mailbox is read-only."


class InvalidSet(Exception):
    """A message sequence number above EXISTS."""


def resolve(sel: SelectedFolder, uid: bool, sequence: C.SequenceSet) -> UidRanges:
    """A command's set as UID ranges of messages this session knows."""
    if uid:
        return sel.clip_uid_ranges(sequence.resolve(sel.last_uid))
    if sequence.exceeds(sel.exists):
        raise InvalidSet
    return sel.seq_ranges_to_uids(sequence.resolve(sel.exists))


# ---------------------------------------------------------------------- FETCH


async def do_fetch(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Fetch)
    sel = s.sel()
    try:
        ranges = resolve(sel, cmd.uid, cmd.sequence)
    except InvalidSet:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Invalid messageset.")
    if cmd.vanished and (not cmd.uid or not s.qresync or cmd.changed_since is None):
        s.count_bad()
        return tagged(cmd.tag, "BAD", "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE.")
    if cmd.changed_since is not None or any(i.name == "MODSEQ" for i in cmd.items):
        _enable_condstore(s)
    if cmd.vanished and cmd.changed_since is not None:
        changes = await s.box().changes_since(sel.folder, cmd.changed_since)
        gone = in_ranges(changes.vanished, ranges)
        if gone:
            s.conn.write(b"* VANISHED (EARLIER) " + sequence_set(gone) + b"\r\n")
    if not ranges:
        return tagged(cmd.tag, "OK", "Fetch completed.")
    try:
        found = await _stream(s, sel, cmd, ranges)
    except mime.UnknownEncoding:
        return tagged(cmd.tag, "NO", "Unknown Content-Transfer-Encoding.", "UNKNOWN-CTE")
    if not cmd.uid and cmd.changed_since is None and found < sel.count_in(ranges):
        return tagged(cmd.tag, "NO", "Some of the requested messages no longer exist.",
                      "EXPUNGEISSUED")
    return tagged(cmd.tag, "OK", "Fetch completed.")


async def _stream(s: ImapSession, sel: SelectedFolder, cmd: C.Fetch, ranges: UidRanges
                  ) -> int:
    """Write the FETCH responses batch by batch; returns how many messages were found."""
    mb = s.box()
    conn = s.conn
    items = cmd.items
    sets_seen = not sel.readonly and any(i.sets_seen for i in items)
    with_flags = items if any(i.name == "FLAGS" for i in items) else (*items, C.ITEM_FLAGS)
    modseq = sel.condstore
    changed_since = cmd.changed_since
    render = fetch_render.render
    seq_of = sel.seq_of
    check_recent = bool(sel.recent)
    found = 0
    async for batch in _batches(s, sel, ranges, fetch_render.needs_body(items), changed_since):
        seen_now: dict[int, MessageInfo] = {}
        if sets_seen:
            unseen = [info.uid for info, _ in batch if SEEN not in info.flags]
            if unseen:
                changed, _ = await mb.store_flags(sel.folder, ranges_of(unseen), "add", [SEEN])
                sel.note_reported(changed)
                seen_now = {info.uid: info for info in changed}
                _notify(s)
        out: list[bytes] = []
        for info, body in batch:
            seq = seq_of(info.uid)
            if seq is None:
                continue  # arrived after the last EXISTS this session sent
            found += 1
            fresh = seen_now.get(info.uid)
            if changed_since is not None and info.modseq <= changed_since and fresh is None:
                continue
            recent = check_recent and sel.is_recent(info.uid)
            if fresh is not None:
                out.append(render(seq, fresh, with_flags, body, modseq=modseq, recent=recent))
            else:
                out.append(render(seq, info, items, body, modseq=modseq, recent=recent))
        if out:
            conn.write(b"".join(out))
        await conn.drain()
    return found


async def _batches(
    s: ImapSession, sel: SelectedFolder, ranges: UidRanges, needs_body: bool,
    changed_since: int | None,
) -> AsyncIterator[list[tuple[MessageInfo, bytes | None]]]:
    """The messages in ``ranges`` in bounded batches: metadata only when no item needs
    the body; one query for a single message (mbsync's case); otherwise metadata pages
    cut into groups of at most ``BODY_BATCH`` messages or ``BODY_BATCH_BYTES`` bytes,
    each group's bodies read in one query."""
    mb = s.box()
    folder = sel.folder
    if not needs_body:
        async for batch in mb.scan(folder, ranges, bodies=False, batch=META_BATCH):
            yield batch
        return
    if sel.count_in(ranges) <= 1:
        async for batch in mb.scan(folder, ranges, bodies=True, batch=1):
            yield batch
        return
    async for page in mb.scan(folder, ranges, bodies=False, batch=META_BATCH):
        group: list[MessageInfo] = []
        size = 0
        for info, _ in page:
            if changed_since is not None and info.modseq <= changed_since:
                continue
            if group and (len(group) >= BODY_BATCH or size + info.size > BODY_BATCH_BYTES):
                yield await _with_bodies(s, group)
                group, size = [], 0
            group.append(info)
            size += info.size
        if group:
            yield await _with_bodies(s, group)


async def _with_bodies(s: ImapSession, group: list[MessageInfo]
                       ) -> list[tuple[MessageInfo, bytes | None]]:
    found = await s.box().bodies(s.sel().folder, [info.uid for info in group])
    return [(info, found[info.uid]) for info in group if info.uid in found]


def _enable_condstore(s: ImapSession) -> None:
    s.condstore = True
    if s.selected is not None:
        s.selected.condstore = True


# ---------------------------------------------------------------------- STORE


async def do_store(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Store)
    sel = s.sel()
    if sel.readonly:
        return tagged(cmd.tag, "NO", READ_ONLY, "READ-ONLY")
    try:
        ranges = resolve(sel, cmd.uid, cmd.sequence)
    except InvalidSet:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Invalid messageset.")
    if cmd.unchanged_since is not None:
        _enable_condstore(s)
    flags = [f for f in cmd.flags if f.lower() != "\\recent"]
    if not ranges:
        return tagged(cmd.tag, "OK", "Store completed.")
    mb = s.box()
    changed, refused = await mb.store_flags(sel.folder, ranges, cmd.mode, flags,
                                            cmd.unchanged_since)
    sel.note_reported(changed)
    _notify(s)
    if sel.learn_keywords(changed):
        s.conn.write(sel.flags_response())  # a new keyword: FLAGS before the FETCH lines
    with_uid = cmd.uid or s.qresync
    out: list[bytes] = []
    for info in changed:
        seq = sel.seq_of(info.uid)
        if seq is None:
            continue
        line = _store_line(sel, seq, info, with_uid=with_uid, silent=cmd.silent)
        if line:
            out.append(line)
    if not cmd.silent and cmd.unchanged_since is None:
        # Messages whose flags were already so: report their flags too (RFC 3501 §6.4.6).
        done = {info.uid for info in changed}
        if sel.count_in(ranges) > len(done):
            for info in await mb.messages(sel.folder, ranges):
                seq = sel.seq_of(info.uid)
                if seq is not None and info.uid not in done:
                    out.append(_store_line(sel, seq, info, with_uid=with_uid, silent=False))
    if out:
        out.sort(key=_seq_key)
        s.conn.write(b"".join(out))
    if refused:
        if cmd.uid:
            failed = sequence_set(sorted(refused))
        else:
            failed = sequence_set(sorted(n for n in map(sel.seq_of, refused) if n is not None))
        return tagged(cmd.tag, "OK", "Conditional STORE failed.",
                      "MODIFIED " + failed.decode())
    return tagged(cmd.tag, "OK", "Store completed.")


def _seq_key(line: bytes) -> int:
    return int(line[2:line.index(b" ", 2)])


def _store_line(sel: SelectedFolder, seq: int, info: MessageInfo, *, with_uid: bool,
                silent: bool) -> bytes:
    parts: list[bytes] = []
    if with_uid:
        parts.append(b"UID %d" % info.uid)
    if not silent:
        parts.append(b"FLAGS " + sel.flags_of(info))
    if sel.condstore:
        parts.append(b"MODSEQ (%d)" % info.modseq)
    if not parts or (silent and not sel.condstore):
        return b""
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"


def _notify(s: ImapSession) -> None:
    """Wake IDLE-ing sessions of this process on the selected folder."""
    sel = s.selected
    notify = getattr(s.ctx.watcher, "notify", None)
    if sel is not None and notify is not None:
        notify(sel.folder.id)


# ---------------------------------------------------------------------- COPY / MOVE


async def do_copy(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Copy)
    sel = s.sel()
    verb = "Move" if cmd.move else "Copy"
    if cmd.move and sel.readonly:
        return tagged(cmd.tag, "NO", READ_ONLY, "READ-ONLY")
    try:
        ranges = resolve(sel, cmd.uid, cmd.sequence)
    except InvalidSet:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Invalid messageset.")
    mb = s.box()
    try:
        if cmd.move:
            result = await mb.move(sel.folder, ranges, cmd.mailbox)
        else:
            result = await mb.copy(sel.folder, ranges, cmd.mailbox)
    except FolderNotFound:
        # Raises FolderNotFound when the selected folder itself is gone; by id, because
        # another session may have renamed it.
        await mb.highestmodseq(sel.folder)
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "TRYCREATE")
    except OverQuota:
        return tagged(cmd.tag, "NO", "Quota exceeded (mailbox for user is full)", "OVERQUOTA")
    if not result.pairs:
        return tagged(cmd.tag, "OK", f"No messages found to {verb.lower()}.")
    pairs = sorted(result.pairs)
    sources = ranges_set(ranges_of([src for src, _ in pairs])).decode()
    targets = sequence_set([dst for _, dst in pairs]).decode()
    code = f"COPYUID {result.uidvalidity} {sources} {targets}"
    if not cmd.move:
        return tagged(cmd.tag, "OK", "Copy completed.", code)
    s.conn.write(b"* OK [" + code.encode() + b"] Moved UIDs.\r\n")
    s.conn.write(b"".join(sel.remove(src for src, _ in pairs)))
    _notify(s)
    return tagged(cmd.tag, "OK", "Move completed.")


# ---------------------------------------------------------------------- EXPUNGE / CLOSE


async def do_expunge(s: ImapSession, cmd: C.Command) -> bytes:
    sel = s.sel()
    if sel.readonly:
        return tagged(cmd.tag, "NO", READ_ONLY, "READ-ONLY")
    ranges: UidRanges | None = None
    if isinstance(cmd, C.UidExpunge):
        ranges = sel.clip_uid_ranges(cmd.sequence.resolve(sel.last_uid))
        if not ranges:
            return tagged(cmd.tag, "OK", "Expunge completed.")
    expunged = await s.box().expunge(sel.folder, ranges)
    if expunged:
        s.conn.write(b"".join(sel.remove(expunged)))
        _notify(s)
    return tagged(cmd.tag, "OK", "Expunge completed.")


async def do_close(s: ImapSession, cmd: C.Command) -> bytes:
    sel = s.sel()
    s.selected = None
    if not sel.readonly:
        expunged = await s.box().expunge(sel.folder)
        if expunged:
            notify = getattr(s.ctx.watcher, "notify", None)
            if notify is not None:
                notify(sel.folder.id)
    return tagged(cmd.tag, "OK", "Close completed.")


async def do_unselect(s: ImapSession, cmd: C.Command) -> bytes:
    s.selected = None
    return tagged(cmd.tag, "OK", "Unselect completed.")


# ---------------------------------------------------------------------- SEARCH / SORT


async def do_search(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Search)
    sel = s.sel()
    with_modseq = search.uses_modseq(cmd.key)
    if with_modseq:
        _enable_condstore(s)
    found = await search.search_detailed(s.box(), sel.folder, sel.uids, cmd.key,
                                         sel.is_recent, time.time())
    numbers = found.uids if cmd.uid else [n for n in map(sel.seq_of, found.uids)
                                          if n is not None]
    highest = found.highest_modseq if with_modseq else None
    if cmd.returns is not None:
        s.conn.write(search.esearch_response(cmd.tag, cmd.uid, numbers, cmd.returns, highest))
    else:
        s.conn.write(search.search_response(numbers, highest))
    return tagged(cmd.tag, "OK", "Search completed.")


async def do_sort(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Sort)
    sel = s.sel()
    found = await sort.sort(s.box(), sel.folder, sel.uids, cmd.criteria, cmd.key,
                            sel.is_recent, time.time())
    uids = [uid for uid in found if sel.seq_of(uid) is not None]
    numbers = uids if cmd.uid else [n for n in map(sel.seq_of, uids) if n is not None]
    s.conn.write(b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n")
    return tagged(cmd.tag, "OK", "Sort completed.")


HANDLERS: dict[type, Handler] = {
    C.Fetch: do_fetch,
    C.Store: do_store,
    C.Copy: do_copy,
    C.UidExpunge: do_expunge,
    C.Search: do_search,
    C.Sort: do_sort,
}

SIMPLE_HANDLERS: dict[str, Handler] = {
    "EXPUNGE": do_expunge,
    "CLOSE": do_close,
    "UNSELECT": do_unselect,
}
