"""IMAP commands on folders: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST and
LSUB (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE), STATUS, APPEND
(UIDPLUS APPENDUID) and QUOTA (RFC 9208).

Handlers take the session and the parsed command, write their untagged data through the
session's connection and return the tagged line (see ``hayate.imap.session``). Folder names
arrive decoded (UTF-8, ``/`` hierarchy) and leave encoded by ``response.mailbox_name``.

LIST strategy: one ``Mailboxes.folders()`` call, then everything in memory — the names
implied by deeper folders (shown ``\\Noselect``/``\\NonExistent``), children flags, and the
wildcard match (``*`` anything, ``%`` anything but ``/``) through one
``listpattern.ListPattern`` per pattern (no backtracking; at most ``MAX_PATTERN`` characters).

QRESYNC SELECT: the tombstones since the client's modseq are filtered by its known UIDs with a
binary search over the merged ranges (``uid_filter``), not a scan of every range per UID.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hayate.imap import commands as C
from hayate.imap.listpattern import MAX_PATTERN, ListPattern
from hayate.imap.response import mailbox_name, sequence_set, tagged
from hayate.imap.selected import SelectedFolder
from hayate.imap.uidranges import in_ranges
from hayate.mailbox.model import (
    HIERARCHY_SEPARATOR,
    SPECIAL_USES,
    Folder,
    FolderExists,
    FolderNotFound,
    FolderStatus,
    MailboxError,
    OverQuota,
)

if TYPE_CHECKING:
    from hayate.imap.session import Handler, ImapSession

SEP = HIERARCHY_SEPARATOR


def _is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


# ---------------------------------------------------------------------- SELECT / EXAMINE


async def do_select(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Select)
    conn = s.conn
    if cmd.qresync is not None and not s.qresync:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "QRESYNC is not enabled.")
    if s.selected is not None:
        s.selected = None
        conn.write(b"* OK [CLOSED] Previous mailbox closed.\r\n")
    if cmd.condstore:
        s.condstore = True
    mb = s.box()
    try:
        folder = await mb.folder(cmd.mailbox)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "NONEXISTENT")
    uids = await mb.uids(folder)
    keywords = await s.ctx.keywords.keywords(mb, folder) if uids else []
    if cmd.readonly:
        status = await mb.status(folder.name)
        recent = min(status.recent, len(uids))
        recent_from = uids[-recent] if recent else None
    else:
        recent_from = await mb.claim_recent(folder)
    sel = SelectedFolder(
        folder, uids, readonly=cmd.readonly, modseq=folder.highestmodseq,
        uidnext=folder.uidnext, recent_from=recent_from, condstore=s.condstore,
        qresync=s.qresync, keywords=keywords,
    )
    first_unseen = await mb.first_unseen_uid(folder)
    out = [sel.flags_response(), b"* %d EXISTS\r\n" % sel.exists,
           b"* %d RECENT\r\n" % sel.recent_count()]
    if first_unseen is not None:
        seq = sel.seq_of(first_unseen)
        if seq is not None:
            out.append(b"* OK [UNSEEN %d] First unseen.\r\n" % seq)
    out.append(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % folder.uidvalidity)
    out.append(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % sel.uidnext)
    out.append(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % max(folder.highestmodseq, 1))
    conn.write(b"".join(out))
    if cmd.qresync is not None and cmd.qresync.uidvalidity == folder.uidvalidity:
        await _qresync_select(s, sel, cmd.qresync)
    s.selected = sel
    code = "READ-ONLY" if cmd.readonly else "READ-WRITE"
    return tagged(cmd.tag, "OK", "Select completed." if not cmd.readonly
                  else "Examine completed.", code)


async def _qresync_select(s: ImapSession, sel: SelectedFolder, q: C.Qresync) -> None:
    """RFC 7162 §3.2.5: what changed since the client's modseq — VANISHED (EARLIER) then
    FETCH of the changed messages."""
    mb = s.box()
    changes = await mb.changes_since(sel.folder, q.modseq)
    known = q.known_uids.resolve(sel.uidnext) if q.known_uids is not None else None
    vanished = list(changes.vanished) if known is None else in_ranges(changes.vanished, known)
    if vanished:
        s.conn.write(b"* VANISHED (EARLIER) " + sequence_set(vanished) + b"\r\n")
    lines: list[bytes] = []
    for info in changes.changed:
        seq = sel.seq_of(info.uid)
        if seq is not None and info.modseq > q.modseq:
            lines.append(sel.flag_update(seq, info))
            if len(lines) >= 1000:
                s.conn.write(b"".join(lines))
                lines.clear()
                await s.conn.drain()
    if lines:
        s.conn.write(b"".join(lines))


# ---------------------------------------------------------------------- CREATE / DELETE / ...


async def do_create(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Create)
    name = cmd.mailbox.rstrip(SEP) if cmd.mailbox != SEP else cmd.mailbox
    if _is_inbox(name):
        return tagged(cmd.tag, "NO", "Mailbox already exists.", "ALREADYEXISTS")
    uses = cmd.special_use
    if len(uses) > 1:
        return tagged(cmd.tag, "NO", "Only one special-use attribute per mailbox.", "USEATTR")
    use = None
    if uses:
        use = next((u for u in SPECIAL_USES if u.lower() == uses[0].lower()), None)
        if use is None:
            return tagged(cmd.tag, "NO", f"Unsupported special-use attribute {uses[0]}.",
                          "USEATTR")
    try:
        await s.box().create_folder(name, use)
    except FolderExists:
        return tagged(cmd.tag, "NO", "Mailbox already exists.", "ALREADYEXISTS")
    return tagged(cmd.tag, "OK", "Create completed.")


async def do_delete(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Delete)
    if _is_inbox(cmd.mailbox):
        return tagged(cmd.tag, "NO", "INBOX can't be deleted.", "CANNOT")
    sel = s.selected
    if sel is not None and sel.folder.name == cmd.mailbox:
        s.selected = None
        s.conn.write(b"* OK [CLOSED] Selected mailbox closed.\r\n")
    try:
        await s.box().delete_folder(cmd.mailbox)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "NONEXISTENT")
    return tagged(cmd.tag, "OK", "Delete completed.")


async def do_rename(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Rename)
    new = cmd.new.rstrip(SEP) or cmd.new
    if _is_inbox(new):
        return tagged(cmd.tag, "NO", "Mailbox already exists.", "ALREADYEXISTS")
    mb = s.box()
    try:
        await mb.rename_folder(cmd.old, new)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.old}", "NONEXISTENT")
    except FolderExists:
        return tagged(cmd.tag, "NO", "Target mailbox already exists.", "ALREADYEXISTS")
    sel = s.selected
    if sel is not None and not _is_inbox(cmd.old):
        current = sel.folder.name
        if current == cmd.old or current.startswith(cmd.old + SEP):
            renamed = new + current[len(cmd.old):]
            with contextlib.suppress(FolderNotFound):
                sel.folder = await mb.folder(renamed)
    return tagged(cmd.tag, "OK", "Rename completed.")


async def do_subscribe(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Subscribe)
    try:
        await s.box().subscribe(cmd.mailbox, cmd.subscribe)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "NONEXISTENT")
    return tagged(cmd.tag, "OK", f"{cmd.name.capitalize()} completed.")


# ---------------------------------------------------------------------- STATUS


def status_items(status: FolderStatus, items: Iterable[str]) -> bytes:
    values = {
        "MESSAGES": status.messages, "RECENT": status.recent, "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity, "UNSEEN": status.unseen,
        "HIGHESTMODSEQ": status.highestmodseq, "SIZE": status.size, "DELETED": status.deleted,
    }
    return b" ".join(b"%s %d" % (item.encode(), values[item]) for item in items
                     if item in values)


async def do_status(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Status)
    try:
        status = await s.box().status(cmd.mailbox)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "NONEXISTENT")
    if "HIGHESTMODSEQ" in cmd.items:
        s.condstore = True
        if s.selected is not None:
            s.selected.condstore = True
    s.conn.write(b"* STATUS " + mailbox_name(cmd.mailbox) + b" ("
                 + status_items(status, cmd.items) + b")\r\n")
    return tagged(cmd.tag, "OK", "Status completed.")


# ---------------------------------------------------------------------- LIST / LSUB


class _Node:
    __slots__ = ("children", "folder", "name", "subscribed_child")

    def __init__(self, name: str, folder: Folder | None) -> None:
        self.name = name
        self.folder = folder
        self.children = False
        self.subscribed_child = False


def _tree(folders: list[Folder]) -> dict[str, _Node]:
    """Every folder and every name implied by a deeper one, with children flags."""
    nodes: dict[str, _Node] = {f.name: _Node(f.name, f) for f in folders}
    for folder in folders:
        parts = folder.name.split(SEP)
        for depth in range(1, len(parts)):
            parent = SEP.join(parts[:depth])
            node = nodes.get(parent)
            if node is None:
                node = nodes[parent] = _Node(parent, None)
            node.children = True
            if folder.subscribed:
                node.subscribed_child = True
    return nodes


async def do_list(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.List)
    conn = s.conn
    word = b"LSUB" if cmd.lsub else b"LIST"
    patterns = [cmd.reference + p for p in cmd.patterns]
    if not cmd.lsub and patterns == [cmd.reference] and not cmd.patterns[0]:
        # LIST "" "": the hierarchy delimiter and root.
        conn.write(b'* LIST (\\Noselect) "/" ""\r\n')
        return tagged(cmd.tag, "OK", "List completed.")
    folders = await s.box().folders()
    nodes = _tree(folders)
    if any(len(p) > MAX_PATTERN for p in patterns):
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Mailbox pattern too long.")
    regexes = [ListPattern(p) for p in patterns if p]
    selection = cmd.selection
    subscribed_only = cmd.lsub or "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    recursive = "RECURSIVEMATCH" in selection
    show_subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in cmd.returns
    want_status = cmd.status_items if "STATUS" in cmd.returns else ()
    ordered = sorted(nodes.values(), key=lambda n: (n.name != "INBOX", n.name))
    lines: list[bytes] = []
    for node in ordered:
        if not any(r.match(node.name) for r in regexes):
            continue
        folder = node.folder
        subscribed = folder is not None and folder.subscribed
        childinfo = False
        if subscribed_only and not subscribed:
            if cmd.lsub and node.subscribed_child and not _any_match_deeper(regexes, node):
                # LSUB "" "%" shows a parent of subscribed folders as \Noselect.
                lines.append(b'* LSUB (\\Noselect) "/" ' + mailbox_name(node.name) + b"\r\n")
                continue
            if recursive and node.subscribed_child:
                childinfo = True
            else:
                continue
        if special_only and (folder is None or folder.special_use is None):
            continue
        attrs: list[str] = []
        if cmd.lsub:
            if folder is None:
                attrs.append("\\Noselect")
        else:
            if folder is None:
                attrs.append("\\NonExistent" if cmd.extended else "\\Noselect")
            if subscribed and show_subscribed:
                attrs.append("\\Subscribed")
            attrs.append("\\HasChildren" if node.children else "\\HasNoChildren")
            if folder is not None and folder.special_use:
                attrs.append(folder.special_use)
        line = word + b" (" + " ".join(attrs).encode() + b') "/" ' + mailbox_name(node.name)
        if childinfo:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        lines.append(b"* " + line + b"\r\n")
        if want_status and folder is not None and not childinfo:
            status = await s.box().status(folder.name)
            lines.append(b"* STATUS " + mailbox_name(folder.name) + b" ("
                         + status_items(status, want_status) + b")\r\n")
    conn.write(b"".join(lines))
    return tagged(cmd.tag, "OK", f"{word.decode().capitalize()} completed.")


def _any_match_deeper(regexes: list[ListPattern], node: _Node) -> bool:
    """Whether the patterns can also reach below ``node`` (``*``): then the subscribed
    children are listed themselves and the parent is not shown."""
    probe = node.name + SEP + "x"
    return any(r.match(probe) for r in regexes)


# ---------------------------------------------------------------------- APPEND


async def do_append(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Append)
    if not cmd.message:
        return tagged(cmd.tag, "NO", "Can't save a zero byte message.")
    flags = [f for f in cmd.flags if f.lower() != "\\recent"]
    when = cmd.date.timestamp() if cmd.date is not None else time.time()
    try:
        uidvalidity, uid = await s.box().append(cmd.mailbox, cmd.message, flags, when)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "TRYCREATE")
    except OverQuota:
        return tagged(cmd.tag, "NO", "Quota exceeded (mailbox for user is full)", "OVERQUOTA")
    except MailboxError as exc:
        return tagged(cmd.tag, "NO", str(exc) or "Can't save the message.", "CANNOT")
    return tagged(cmd.tag, "OK", "Append completed.", f"APPENDUID {uidvalidity} {uid}")


# ---------------------------------------------------------------------- QUOTA


async def _quota_line(s: ImapSession) -> bytes:
    """``* QUOTA "" (STORAGE used limit)`` in KiB; ``()`` for an account without a limit."""
    quota = await s.box().quota()
    if quota.limit <= 0:
        return b'* QUOTA "" ()\r\n'
    used_kib = (quota.used + 1023) // 1024
    return b'* QUOTA "" (STORAGE %d %d)\r\n' % (used_kib, quota.limit // 1024)


async def do_getquotaroot(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.GetQuotaRoot)
    try:
        await s.box().folder(cmd.mailbox)
    except FolderNotFound:
        return tagged(cmd.tag, "NO", f"Mailbox doesn't exist: {cmd.mailbox}", "NONEXISTENT")
    line = await _quota_line(s)
    s.conn.write(b"* QUOTAROOT " + mailbox_name(cmd.mailbox) + b' ""\r\n' + line)
    return tagged(cmd.tag, "OK", "Getquotaroot completed.")


async def do_getquota(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.GetQuota)
    if cmd.root != "":
        return tagged(cmd.tag, "NO", f"Quota root doesn't exist: {cmd.root}", "NONEXISTENT")
    s.conn.write(await _quota_line(s))
    return tagged(cmd.tag, "OK", "Getquota completed.")


async def do_setquota(s: ImapSession, cmd: C.Command) -> bytes:
    return tagged(cmd.tag, "NO", "Quotas are set by the administrator (hayate user quota).",
                  "NOPERM")


HANDLERS: dict[type, Handler] = {
    C.Select: do_select,
    C.Create: do_create,
    C.Delete: do_delete,
    C.Rename: do_rename,
    C.Subscribe: do_subscribe,
    C.Status: do_status,
    C.List: do_list,
    C.Append: do_append,
    C.GetQuota: do_getquota,
    C.GetQuotaRoot: do_getquotaroot,
    C.SetQuota: do_setquota,
}
