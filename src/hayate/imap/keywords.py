"""The keywords in use in a folder, for the ``* FLAGS`` of SELECT/EXAMINE (RFC 3501 §7.2.6).

The store keeps flags per message only, so finding a folder's keywords means one
``SELECT DISTINCT`` over the folder's metadata index (``Mailboxes.keywords``; the scan in
Python it replaced took about 0.3 s for 100,000 messages). :class:`KeywordCache` keeps the
answer per folder in this process, stamped with the folder's HIGHESTMODSEQ:

- same modseq at the next SELECT: the cached list, no query;
- a modseq that moved by at most ``INCREMENTAL_LIMIT``: only the messages changed since
  (``Mailboxes.changes_since``) are read and their keywords added;
- otherwise (or for a folder not cached): a full scan.

A keyword is never dropped from the list once seen (a message losing it, or being expunged,
leaves it there) — Dovecot's keyword list behaves the same way, and clients only use the
list to offer keywords. Entries are keyed by (folder id, UIDVALIDITY), so a folder deleted
and made again starts afresh; at most ``CACHE_SIZE`` folders are kept, least recently used
dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from hayate.mailbox.model import Folder, Mailboxes

INCREMENTAL_LIMIT = 10_000  # modseq steps above which a full scan replaces changes_since
CACHE_SIZE = 1024  # folders remembered per process


def add_keywords(found: dict[str, str], flag_sets: Iterable[frozenset[str]]) -> None:
    """Add the keywords (flags without a backslash) of ``flag_sets`` to ``found``
    (casefolded → first spelling seen)."""
    for flags in flag_sets:
        for flag in flags:
            if not flag.startswith("\\"):
                found.setdefault(flag.casefold(), flag)


async def scan_keywords(mailboxes: Mailboxes, folder: Folder) -> dict[str, str]:
    """Every keyword set on a message of ``folder`` (casefolded → one spelling of it)."""
    return {keyword.casefold(): keyword for keyword in await mailboxes.keywords(folder)}


class KeywordCache:
    """Keywords per folder, kept up to date through the folder's modseq (module docstring)."""

    __slots__ = ("_entries", "full_scans", "incremental", "size")

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, int], tuple[int, dict[str, str]]] = OrderedDict()
        self.full_scans = 0
        self.incremental = 0

    async def keywords(self, mailboxes: Mailboxes, folder: Folder) -> list[str]:
        """The keywords of ``folder`` (as read just now by ``Mailboxes.folder``), sorted."""
        key = (folder.id, folder.uidvalidity)
        modseq = folder.highestmodseq
        entry = self._entries.get(key)
        if entry is not None and entry[0] == modseq:
            self._entries.move_to_end(key)
            return sorted(entry[1].values())
        if entry is not None and 0 < modseq - entry[0] <= INCREMENTAL_LIMIT:
            self.incremental += 1
            found = dict(entry[1])
            changes = await mailboxes.changes_since(folder, entry[0])
            add_keywords(found, dict.fromkeys(info.flags for info in changes.changed))
            modseq = max(modseq, changes.highestmodseq)
        else:
            self.full_scans += 1
            found = await scan_keywords(mailboxes, folder)
        self._entries[key] = (modseq, found)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return sorted(found.values())


KEYWORDS = KeywordCache()  # shared by every IMAP session of this process
