"""One POP3 session's view of its maildrop (INBOX): the messages as they were at login,
numbered 1..n in UID order, and what the session did to them.

RFC 1939 numbers messages for the whole session: deliveries after login do not appear and a
number never changes meaning. DELE only marks (``deleted``); the marks are carried out in
the UPDATE state after QUIT, and RSET clears them. RETR marks a message ``retrieved`` so it
can be flagged \\Seen when the session ends (Dovecot's default; TOP does not mark).

Memory: two arrays and two bitmaps, about 13 bytes per message.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable


class Maildrop:
    """The snapshot taken at login. Message numbers given to methods are 1-based and must
    be valid (``1 <= n <= count``); :meth:`check` says whether one is."""

    __slots__ = ("_deleted", "_retrieved", "deleted_count", "deleted_size", "sizes",
                 "total_size", "uids", "uidvalidity")

    def __init__(self, uidvalidity: int, messages: Iterable[tuple[int, int]]) -> None:
        """``messages``: (uid, size) in ascending UID order."""
        self.uidvalidity = uidvalidity
        self.uids = array("I")
        self.sizes = array("Q")
        for uid, size in messages:
            self.uids.append(uid)
            self.sizes.append(size)
        self.total_size = sum(self.sizes)
        self._deleted = bytearray(len(self.uids))
        self._retrieved = bytearray(len(self.uids))
        self.deleted_count = 0
        self.deleted_size = 0

    @property
    def count(self) -> int:
        """Messages in the snapshot, deleted or not."""
        return len(self.uids)

    def uid(self, number: int) -> int:
        return self.uids[number - 1]

    def size(self, number: int) -> int:
        return self.sizes[number - 1]

    def is_deleted(self, number: int) -> bool:
        return bool(self._deleted[number - 1])

    def delete(self, number: int) -> None:
        if not self._deleted[number - 1]:
            self._deleted[number - 1] = 1
            self.deleted_count += 1
            self.deleted_size += self.sizes[number - 1]

    def retrieved(self, number: int) -> None:
        self._retrieved[number - 1] = 1

    def reset(self) -> None:
        """RSET: unmark everything (the \\Seen marks too, like Dovecot)."""
        self._deleted = bytearray(self.count)
        self._retrieved = bytearray(self.count)
        self.deleted_count = 0
        self.deleted_size = 0

    def live(self) -> Iterable[int]:
        """Numbers of the messages not marked deleted, ascending."""
        deleted = self._deleted
        return (i + 1 for i in range(len(deleted)) if not deleted[i])

    def deleted_uids(self) -> list[int]:
        return [self.uids[i] for i, mark in enumerate(self._deleted) if mark]

    def seen_uids(self) -> list[int]:
        """UIDs retrieved and not deleted: the ones to flag \\Seen when the session ends."""
        return [
            self.uids[i]
            for i, mark in enumerate(self._retrieved)
            if mark and not self._deleted[i]
        ]
