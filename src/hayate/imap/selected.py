"""The selected folder of one IMAP session: sequence numbers ↔ UIDs and pending updates.

State kept per session (RFC 3501 §2.3.1, §7.4.1; RFC 7162 for CONDSTORE/QRESYNC):

- ``uids``: the UIDs this session has announced, ascending, as an ``array('I')``; message
  sequence number *n* is ``uids[n - 1]``. A 100,000-message folder costs 400 KB here.
- ``modseq`` / ``uidnext``: how far the store's change log has been folded into the view.
  :meth:`SelectedFolder.poll` asks ``Mailboxes.highestmodseq`` (the cheap check) and only
  when that moved ``Mailboxes.changes_since``.
- ``hidden_expunges``: UIDs the store no longer has but which keep their sequence number
  because an EXPUNGE could not be sent yet (during FETCH, STORE, SEARCH — RFC 3501 §7.4.1).
  They are announced (EXPUNGE, or VANISHED under QRESYNC) by the next poll that may.
- ``reported``: flag changes this session already sent itself (its own STORE, the implicit
  \\Seen of a FETCH) by UID → modseq, so the next poll does not send them twice.
- ``recent``: UID ranges that are \\Recent to this session (claimed from the store with
  ``Mailboxes.claim_recent`` on a read-write SELECT and whenever new mail shows up), in
  ascending order; they need not be one range (another session may claim mail in between).
- ``keywords``: the keywords announced in ``* FLAGS`` (casefolded → spelling): those in use
  when the folder was selected (``hayate.imap.keywords`` finds them) and
  every new one seen since. A STORE or poll that brings a new keyword sends ``* FLAGS``
  and ``PERMANENTFLAGS`` again before its FETCH lines (RFC 3501 §7.2.6), like Dovecot.

Strategies: UID → sequence number by binary search; expunges rebuild the array once per
batch; a poll that finds nothing costs one query. Nothing here writes to the network: polls
return the untagged response lines for the caller to send.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from operator import itemgetter

from hayate.imap.fetch import flags_of
from hayate.imap.response import flag_list, ranges_set
from hayate.mailbox.model import (
    SYSTEM_FLAGS,
    Folder,
    Mailboxes,
    MessageInfo,
    UidRanges,
    ranges_of,
)

RECENT = "\\Recent"
_first = itemgetter(0)


class SelectedFolder:
    """One session's view of its selected folder (see the module docstring)."""

    __slots__ = (
        "condstore",
        "folder",
        "hidden_expunges",
        "keywords",
        "modseq",
        "qresync",
        "readonly",
        "recent",
        "reported",
        "uidnext",
        "uids",
    )

    def __init__(
        self,
        folder: Folder,
        uids: Sequence[int],
        *,
        readonly: bool,
        modseq: int,
        uidnext: int,
        recent_from: int | None = None,
        condstore: bool = False,
        qresync: bool = False,
        keywords: Iterable[str] = (),
    ) -> None:
        self.folder = folder
        self.uids = uids if isinstance(uids, array) else array("I", uids)
        self.readonly = readonly
        self.modseq = modseq
        self.uidnext = max(uidnext, self.uids[-1] + 1 if self.uids else 1)
        self.hidden_expunges: set[int] = set()
        self.reported: dict[int, int] = {}
        self.recent: list[tuple[int, int]] = []
        if recent_from is not None and self.uids and recent_from <= self.uids[-1]:
            self.recent.append((recent_from, self.uids[-1]))
        self.condstore = condstore
        self.qresync = qresync
        self.keywords: dict[str, str] = {}
        for keyword in keywords:
            self.keywords.setdefault(keyword.casefold(), keyword)

    # ------------------------------------------------------------------ flags

    def flags_response(self) -> bytes:
        """``* FLAGS (...)`` and ``* OK [PERMANENTFLAGS (...)]``: the system flags and the
        known keywords; a read-write folder also allows new keywords (``\\*``)."""
        listed = [*SYSTEM_FLAGS, *sorted(self.keywords.values())]
        lines = b"* FLAGS " + flag_list(listed) + b"\r\n"
        if self.readonly:
            return lines + b"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
        return lines + b"* OK [PERMANENTFLAGS " + flag_list([*listed, "\\*"]) + \
            b"] Flags permitted.\r\n"

    def learn_keywords(self, infos: Iterable[MessageInfo]) -> bool:
        """Note the keywords of ``infos``; True when one was not announced yet."""
        known = self.keywords
        learned = False
        for info in infos:
            for flag in info.flags:
                if not flag.startswith("\\") and flag.casefold() not in known:
                    known[flag.casefold()] = flag
                    learned = True
        return learned

    # ------------------------------------------------------------------ lookups

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid``, or None when this session does not know it."""
        uids = self.uids
        i = bisect_left(uids, uid)
        if i < len(uids) and uids[i] == uid:
            return i + 1
        return None

    def is_recent(self, uid: int) -> bool:
        """Whether ``uid`` is \\Recent in this session."""
        recent = self.recent
        index = bisect_right(recent, uid, key=_first) - 1
        return index >= 0 and uid <= recent[index][1]

    def recent_count(self) -> int:
        uids = self.uids
        return sum(bisect_right(uids, last) - bisect_left(uids, first)
                   for first, last in self.recent)

    def flags_of(self, info: MessageInfo) -> bytes:
        """The FLAGS list of a message as this session reports it (with \\Recent)."""
        return flags_of(info, bool(self.recent) and self.is_recent(info.uid))

    def seq_ranges_to_uids(self, seq_ranges: Iterable[tuple[int, int]]) -> UidRanges:
        """Resolved sequence-number ranges → the UID ranges covering exactly those messages
        (numbers above EXISTS are dropped)."""
        uids = self.uids
        count = len(uids)
        out: list[tuple[int, int]] = []
        for first, last in seq_ranges:
            first = max(first, 1)
            last = min(last, count)
            if first > last:
                continue
            lo, hi = uids[first - 1], uids[last - 1]
            if out and lo <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(hi, out[-1][1]))
            else:
                out.append((lo, hi))
        return tuple(out)

    def clip_uid_ranges(self, uid_ranges: Iterable[tuple[int, int]]) -> UidRanges:
        """UID ranges limited to what this session has announced (a UID command must not
        show a message before its EXISTS)."""
        last = self.last_uid
        out: list[tuple[int, int]] = []
        for first, end in uid_ranges:
            end = min(end, last)
            if max(first, 1) <= end:
                out.append((max(first, 1), end))
        return tuple(out)

    def uids_in(self, uid_ranges: Iterable[tuple[int, int]]) -> list[int]:
        """The announced UIDs inside ``uid_ranges`` (which are sorted), ascending."""
        uids = self.uids
        out: list[int] = []
        for first, last in uid_ranges:
            out.extend(uids[bisect_left(uids, first):bisect_right(uids, last)])
        return out

    def count_in(self, uid_ranges: Iterable[tuple[int, int]]) -> int:
        uids = self.uids
        return sum(bisect_right(uids, last) - bisect_left(uids, first)
                   for first, last in uid_ranges)

    # ------------------------------------------------------------------ own changes

    def note_reported(self, infos: Iterable[MessageInfo]) -> None:
        """These flag changes were sent to the client already (by STORE or FETCH)."""
        reported = self.reported
        for info in infos:
            reported[info.uid] = info.modseq

    def remove(self, expunged: Iterable[int]) -> list[bytes]:
        """Announce and forget UIDs this session expunged itself (EXPUNGE, CLOSE-less
        paths, MOVE): returns the EXPUNGE/VANISHED lines."""
        gone = {uid for uid in expunged if self.seq_of(uid) is not None}
        return self._announce(gone)

    # ------------------------------------------------------------------ polling

    async def poll(self, mailboxes: Mailboxes, *, allow_expunge: bool) -> list[bytes]:
        """Fold the store's changes since the last poll into the view; returns the untagged
        lines to send (EXPUNGE/VANISHED only when ``allow_expunge``, then EXISTS, RECENT,
        FETCH flag updates)."""
        out: list[bytes] = []
        if allow_expunge and self.hidden_expunges:
            out.extend(self._announce(self.hidden_expunges))
            self.hidden_expunges = set()
        modseq, uidnext = await mailboxes.highestmodseq(self.folder)
        if modseq == self.modseq and uidnext <= self.uidnext:
            self.reported.clear()
            return out
        changes = await mailboxes.changes_since(self.folder, self.modseq)
        self.modseq = max(self.modseq, changes.highestmodseq, modseq)
        self.uidnext = max(self.uidnext, changes.uidnext, uidnext)
        known_last = self.last_uid
        vanished = changes.vanished
        gone = {uid for uid in vanished
                if uid <= known_last and self.seq_of(uid) is not None}
        if gone:
            if allow_expunge:
                out.extend(self._announce(gone | self.hidden_expunges))
                self.hidden_expunges = set()
            else:
                self.hidden_expunges |= gone
        new: list[int] = []
        updated: list[MessageInfo] = []
        reported = self.reported
        hidden = self.hidden_expunges
        dead = set(vanished) if vanished else ()
        for info in changes.changed:
            if info.uid > known_last:
                if info.uid not in dead:
                    new.append(info.uid)
            elif reported.get(info.uid) != info.modseq and info.uid not in hidden:
                updated.append(info)
        reported.clear()
        if self.learn_keywords(info for info in changes.changed if info.uid not in dead):
            out.append(self.flags_response())
        if new:
            await self._claim_recent(mailboxes, new)
            self.uids.extend(new)
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            out.append(b"* %d RECENT\r\n" % self.recent_count())
        for info in updated:
            seq = self.seq_of(info.uid)
            if seq is not None:
                out.append(self.flag_update(seq, info))
        return out

    def flag_update(self, seq: int, info: MessageInfo) -> bytes:
        """``* n FETCH (UID u FLAGS (...) [MODSEQ (m)])``."""
        if self.condstore:
            return b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n" % (
                seq, info.uid, self.flags_of(info), info.modseq)
        return b"* %d FETCH (UID %d FLAGS %s)\r\n" % (seq, info.uid, self.flags_of(info))

    async def _claim_recent(self, mailboxes: Mailboxes, new: list[int]) -> None:
        if self.readonly:
            return
        first = await mailboxes.claim_recent(self.folder)
        mine = [uid for uid in new if uid >= first]
        if mine:
            self.recent.extend(ranges_of(mine))

    def _announce(self, gone: set[int]) -> list[bytes]:
        """Drop ``gone`` from the view; the lines that tell the client."""
        if not gone:
            return []
        uids = self.uids
        seqs = sorted(s for s in (self.seq_of(uid) for uid in gone) if s is not None)
        if not seqs:
            return []
        if self.qresync:
            removed = sorted(uids[s - 1] for s in seqs)
            lines = [b"* VANISHED " + ranges_set(ranges_of(removed)) + b"\r\n"]
        else:
            # Ascending, each number already lowered by the ones expunged before it.
            lines = [b"* %d EXPUNGE\r\n" % (seq - shift) for shift, seq in enumerate(seqs)]
        drop = {uids[s - 1] for s in seqs}
        self.uids = array("I", (uid for uid in uids if uid not in drop))
        for uid in drop:
            self.reported.pop(uid, None)
        return lines
