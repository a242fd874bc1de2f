"""Retention: the ``[[mailbox.retention]]`` rules applied to every account's folders.

A rule names a folder (``"Trash"``, ``"Lists/old"``; ``inbox`` in any case is INBOX) or a
special use (``"\\Trash"``, ``"\\Junk"``: every folder marked with it, whatever its name).
:func:`sweep` expunges the messages of those folders whose internal date is more than
``days`` old, like an EXPUNGE would: tombstones for the UIDs (sessions see them vanish),
a new modseq, and their bytes back to the account's quota (the tombstones count toward the
folder's bound and are pruned by the batch that passes it, see ``hayate.store.tombstones``).
It works in transactions of at most ``batch`` messages, so a big folder never holds the
store's lock for long. The runtime calls it hourly on one worker.
"""

from __future__ import annotations

from hayate.config import RetentionRule
from hayate.mailbox.model import SPECIAL_USES
from hayate.store.base import Store

DAY = 86400.0
DEFAULT_BATCH = 500
_SPECIAL_USES = {use.lower(): use for use in SPECIAL_USES}


def rule_target(folder: str) -> str:
    """The rule's folder as the store matches it: a canonical special use, or the name."""
    if folder.startswith("\\"):
        canonical = _SPECIAL_USES.get(folder.lower())
        if canonical is None:
            raise ValueError(f"retention rule: unknown special use {folder}")
        return canonical
    return folder


async def sweep(
    store: Store, rules: list[RetentionRule], now: float, *, batch: int = DEFAULT_BATCH
) -> int:
    """Apply every rule once; returns how many messages were expunged."""
    removed = 0
    for rule in rules:
        before = now - rule.days * DAY
        for folder_id in await store.find_folders(rule_target(rule.folder)):
            while True:
                count = await store.expunge_older(folder_id, before, batch)
                removed += count
                if count < batch:
                    break
    return removed
