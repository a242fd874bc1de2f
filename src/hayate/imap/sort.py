"""SORT (RFC 5256, with RFC 5957 DISPLAYFROM/DISPLAYTO) over the mailbox service.

Strategy: SEARCH first (``search.search``), then one pass over the matches collecting one
small key tuple per message — from metadata only when every criterion is ARRIVAL or SIZE,
otherwise from ``scan(bodies=True)`` in batches where only the top-level header is parsed
and the body is dropped at once. The keys are sorted with one stable sort per criterion,
last criterion first, on a list already in sequence order: REVERSE flips one criterion and
ties always stay in ascending sequence (= UID) order, as RFC 5256 asks.

Keys: ARRIVAL the internal date; SIZE the stored size; DATE the Date field, or the internal
date when it is missing or unreadable; SUBJECT the RFC 5256 base subject; FROM/TO/CC the
local part of the first address; DISPLAYFROM/DISPLAYTO the decoded display name of the
first address, or its ``mailbox@host`` when it has none. Strings compare casefolded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hayate.imap.commands import SearchKey
from hayate.imap.search import BODY_BATCH, METADATA_BATCH, RecentTest, search
from hayate.mailbox import mime
from hayate.mailbox.mime_address import parse_addresses
from hayate.mailbox.mime_fields import decode_raw
from hayate.mailbox.mime_text import decode_words
from hayate.mailbox.model import Folder, Mailboxes, MessageInfo, ranges_of

SortValue = float | int | str
_METADATA_KEYS = frozenset({"ARRIVAL", "SIZE"})


def display_name(msg: mime.MimeMessage, field: str) -> str:
    """RFC 5957: the first address's display name (decoded), else its addr-spec."""
    for value in msg.values(field):
        for address in parse_addresses(decode_raw(value)):
            if address.is_group_marker:
                continue
            if address.name:
                return decode_words(address.name).casefold()
            if address.mailbox and address.host:
                return f"{address.mailbox}@{address.host}".casefold()
            return (address.mailbox or "").casefold()
    return ""


def sort_value(name: str, info: MessageInfo, msg: mime.MimeMessage | None) -> SortValue:
    """One criterion's key for one message (``msg`` is needed except for ARRIVAL/SIZE)."""
    if name == "ARRIVAL":
        return info.internaldate
    if name == "SIZE":
        return info.size
    if msg is None:
        raise ValueError(f"SORT {name} needs the message")
    if name == "DATE":
        sent = mime.sent_date(msg)
        return info.internaldate if sent is None else sent
    if name == "SUBJECT":
        return mime.base_subject(msg)
    if name in ("FROM", "TO", "CC"):
        return mime.first_address(msg, name.lower())
    if name == "DISPLAYFROM":
        return display_name(msg, "from")
    if name == "DISPLAYTO":
        return display_name(msg, "to")
    raise ValueError(f"unknown sort key {name}")


async def sort(
    mailboxes: Mailboxes,
    folder: Folder,
    uids: Sequence[int],
    criteria: Sequence[tuple[str, bool]],
    key: SearchKey,
    is_recent: RecentTest,
    now: float,
) -> list[int]:
    """The UIDs of the messages matching ``key``, in ``criteria`` order ((name, reverse)
    pairs, most significant first)."""
    matched = await search(mailboxes, folder, uids, key, is_recent, now)
    if not matched:
        return []
    names = [name for name, _ in criteria]
    bodies = not all(name in _METADATA_KEYS for name in names)
    wanted = set(matched)
    rows: list[tuple[int, tuple[SortValue, ...]]] = []
    async for batch in mailboxes.scan(
        folder, ranges_of(matched), bodies=bodies,
        batch=BODY_BATCH if bodies else METADATA_BATCH,
    ):
        for info, data in batch:
            if info.uid not in wanted:
                continue
            msg = mime.parse(data) if bodies and data is not None else None
            rows.append((info.uid, tuple(sort_value(n, info, msg) for n in names)))
    rows.sort(key=lambda row: row[0])
    for index in range(len(criteria) - 1, -1, -1):
        rows.sort(key=_criterion(index), reverse=criteria[index][1])
    return [uid for uid, _ in rows]


def _criterion(index: int) -> Callable[[tuple[int, tuple[SortValue, ...]]], SortValue]:
    return lambda row: row[1][index]
