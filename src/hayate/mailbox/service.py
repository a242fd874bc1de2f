"""The mailbox service: :class:`StoreMailboxes`, the :class:`~hayate.mailbox.model.Mailboxes`
of one account over the store, as the IMAP and POP3 sessions use it.

What it adds to the store: folder names are checked and spelled one way (``INBOX`` in any
case is ``INBOX``; no empty levels, no leading or trailing ``/``, no control characters, at
most 255 characters), flags are checked and canonical (system flags in any case become
``\\Seen``..., ``\\Recent`` is dropped because it is never stored, keywords must be IMAP
atoms and are kept as given), UID ranges are clipped to 1..2**32-1, and the store's errors
become the model's (FolderNotFound, FolderExists, OverQuota, MailboxError) with a message
fit for a client. Only a real database failure comes out as ``StoreError``.

Cost per call: one store transaction, and (except where a UID set has thousands of ranges,
or a copy of many) one SQL statement. ``scan`` pages through a folder by UID in batches, so
a 100,000-message folder is never in memory at once; ``uids`` returns 4 bytes per message.
The account's id is looked up on first use, which also gives an account made before the
default folders existed its Drafts, Sent, Trash, Junk and Archive (once).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager

from hayate.mailbox.model import (
    HIERARCHY_SEPARATOR,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    Changes,
    CopyResult,
    FlagMode,
    Folder,
    FolderExists,
    FolderNotFound,
    FolderStatus,
    MailboxError,
    Mailboxes,
    MessageInfo,
    OverQuota,
    Quota,
    UidRanges,
)
from hayate.store.addresses import normalize_address, split_flags
from hayate.store.base import (
    INBOX,
    FolderRecord,
    InvalidAddress,
    MailboxExists,
    MailboxRefused,
    MessageRow,
    NoSuchAccount,
    NoSuchMailbox,
    QuotaExceeded,
    Store,
    StoredMessage,
)

MAX_NAME_LENGTH = 255
MAX_KEYWORD_LENGTH = 255
MAX_UID = 0xFFFFFFFF
_SYSTEM = {flag.lower(): flag for flag in SYSTEM_FLAGS}
_RECENT = "\\recent"
_ATOM_SPECIALS = frozenset('(){ %*"\\]')
_SPECIAL_USES = {use.lower(): use for use in SPECIAL_USES}


# --------------------------------------------------------------------------- checks


def folder_name(name: str) -> str:
    """The canonical spelling of a folder name; MailboxError when it is not acceptable."""
    if not name:
        raise MailboxError("a folder name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise MailboxError(f"a folder name is at most {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise MailboxError("a folder name cannot contain control characters")
    if name.startswith(HIERARCHY_SEPARATOR) or name.endswith(HIERARCHY_SEPARATOR):
        raise MailboxError(f"a folder name cannot start or end with {HIERARCHY_SEPARATOR!r}")
    levels = name.split(HIERARCHY_SEPARATOR)
    if not all(levels):
        raise MailboxError("a folder name cannot have an empty level")
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return HIERARCHY_SEPARATOR.join(levels)


def canonical_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """System flags spelled canonically, ``\\Recent`` left out, keywords checked to be
    atoms; duplicates (compared case-insensitively) dropped, the first spelling kept."""
    out: dict[str, str] = {}
    for flag in flags:
        if flag.startswith("\\"):
            lowered = flag.lower()
            if lowered == _RECENT:
                continue
            canonical = _SYSTEM.get(lowered)
            if canonical is None:
                raise MailboxError(f"unknown system flag {flag}")
        else:
            if not flag or len(flag) > MAX_KEYWORD_LENGTH or any(
                ch in _ATOM_SPECIALS or not 32 < ord(ch) < 127 for ch in flag
            ):
                raise MailboxError(f"invalid keyword {flag!r}")
            canonical = flag
        out.setdefault(canonical.casefold(), canonical)
    return tuple(out.values())


def clip_ranges(uids: UidRanges) -> UidRanges:
    """Ranges limited to the UIDs that can exist (1 .. 2**32-1), empty ones dropped."""
    return tuple(
        (max(first, 1), min(last, MAX_UID))
        for first, last in uids
        if last >= 1 and first <= MAX_UID and first <= last
    )


def special_use_of(value: str) -> str:
    canonical = _SPECIAL_USES.get(value.lower())
    if canonical is None:
        raise MailboxError(f"unknown special use {value}")
    return canonical


def _folder(record: FolderRecord) -> Folder:
    return Folder(
        record.id, record.name, record.uidvalidity, record.uidnext, record.highestmodseq,
        record.special_use, record.subscribed,
    )


def _infos(rows: list[MessageRow]) -> list[tuple[MessageInfo, bytes | None]]:
    """Rows from the store as the model's values; equal flag strings share one frozenset."""
    flag_sets: dict[str, frozenset[str]] = {}
    out: list[tuple[MessageInfo, bytes | None]] = []
    for uid, modseq, internaldate, size, flags, body in rows:
        found = flag_sets.get(flags)
        if found is None:
            found = flag_sets[flags] = frozenset(flags.split())
        out.append((MessageInfo(uid, modseq, internaldate, size, found), body))
    return out


def _info(message: StoredMessage) -> MessageInfo:
    return MessageInfo(
        message.uid, message.modseq, message.internaldate, message.size,
        frozenset(message.flags),
    )


@contextmanager
def _translated(name: str | None = None) -> Iterator[None]:
    """The store's refusals as the model's errors, with messages for a client."""
    try:
        yield
    except NoSuchMailbox as exc:
        shown = name if name is not None else exc.mailbox
        raise FolderNotFound(f"no folder {shown}") from exc
    except MailboxExists as exc:
        raise FolderExists(f"folder {exc.mailbox} already exists") from exc
    except QuotaExceeded as exc:
        raise OverQuota(
            f"quota exceeded: {exc.used_bytes} of {exc.quota_bytes} bytes used, "
            f"{exc.size} more needed"
        ) from exc
    except MailboxRefused as exc:
        raise MailboxError(str(exc)) from exc
    except NoSuchAccount as exc:
        raise MailboxError("the account no longer exists") from exc


# --------------------------------------------------------------------------- service


class StoreMailboxes(Mailboxes):
    """One account's folders and messages over ``store``; one instance per session."""

    def __init__(self, store: Store, address: str) -> None:
        try:
            self.address = normalize_address(address)
        except InvalidAddress as exc:
            raise MailboxError(f"not an address: {address!r}") from exc
        self.store = store
        self._account_id: int | None = None

    async def _account(self) -> int:
        if self._account_id is None:
            with _translated():
                self._account_id = await self.store.open_folders(self.address)
        return self._account_id

    # -- folders ---------------------------------------------------------------------

    async def folders(self) -> list[Folder]:
        account = await self._account()
        return [_folder(r) for r in await self.store.list_folders(account)]

    async def folder(self, name: str) -> Folder:
        account = await self._account()
        canonical = folder_name(name)
        record = await self.store.get_folder(account, canonical)
        if record is None:
            raise FolderNotFound(f"no folder {canonical}")
        return _folder(record)

    async def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        account = await self._account()
        canonical = folder_name(name)
        use = None if special_use is None else special_use_of(special_use)
        if canonical == INBOX:
            raise FolderExists("INBOX always exists")
        with _translated(canonical):
            return _folder(await self.store.create_folder(account, canonical, use))

    async def delete_folder(self, name: str) -> None:
        account = await self._account()
        canonical = folder_name(name)
        if canonical == INBOX:
            raise MailboxError("INBOX cannot be deleted")
        with _translated(canonical):
            await self.store.delete_folder(account, canonical)

    async def rename_folder(self, old: str, new: str) -> None:
        account = await self._account()
        source, target = folder_name(old), folder_name(new)
        if target == INBOX:
            raise FolderExists("INBOX always exists")
        with _translated(source):
            await self.store.rename_folder(account, source, target)

    async def subscribe(self, name: str, subscribed: bool) -> None:
        account = await self._account()
        canonical = folder_name(name)
        if not await self.store.subscribe_folder(account, canonical, subscribed):
            raise FolderNotFound(f"no folder {canonical}")

    async def status(self, name: str) -> FolderStatus:
        account = await self._account()
        canonical = folder_name(name)
        counts = await self.store.folder_status(account, canonical)
        if counts is None:
            raise FolderNotFound(f"no folder {canonical}")
        f = counts.folder
        return FolderStatus(
            messages=counts.messages, recent=counts.recent, unseen=counts.unseen,
            uidnext=f.uidnext, uidvalidity=f.uidvalidity, highestmodseq=f.highestmodseq,
            size=counts.size, deleted=counts.deleted,
        )

    # -- reading ---------------------------------------------------------------------

    async def uids(self, folder: Folder) -> Sequence[int]:
        return await self.store.folder_uids(folder.id)

    async def messages(self, folder: Folder, uids: UidRanges) -> list[MessageInfo]:
        ranges = clip_ranges(uids)
        if not ranges:
            return []
        return [info for info, _ in _infos(await self.store.folder_messages(folder.id, ranges))]

    async def scan(
        self, folder: Folder, uids: UidRanges | None = None, *, bodies: bool = False,
        batch: int = 500,
    ) -> AsyncIterator[list[tuple[MessageInfo, bytes | None]]]:
        if batch < 1:
            raise ValueError("batch must be 1 or more")
        ranges = None if uids is None else clip_ranges(uids)
        if ranges == ():
            return
        after = 0
        while True:
            rows = await self.store.folder_messages(
                folder.id, ranges, after=after, limit=batch, bodies=bodies
            )
            if not rows:
                return
            yield _infos(rows)
            if len(rows) < batch:
                return
            after = rows[-1][0]

    async def body(self, folder: Folder, uid: int) -> bytes | None:
        if not 1 <= uid <= MAX_UID:
            return None
        return (await self.store.folder_bodies(folder.id, [uid])).get(uid)

    async def bodies(self, folder: Folder, uids: Sequence[int]) -> dict[int, bytes]:
        wanted = [uid for uid in uids if 1 <= uid <= MAX_UID]
        return await self.store.folder_bodies(folder.id, wanted)

    async def changes_since(self, folder: Folder, modseq: int) -> Changes:
        found = await self.store.folder_changes(folder.id, max(0, modseq))
        if found is None:
            raise FolderNotFound(f"folder {folder.name} was deleted")
        return Changes(
            found.highestmodseq, found.uidnext, [_info(m) for m in found.changed],
            found.vanished,
        )

    async def keywords(self, folder: Folder) -> list[str]:
        found: dict[str, str] = {}
        for stored in await self.store.folder_flag_sets(folder.id):
            for flag in split_flags(stored):
                if not flag.startswith("\\"):
                    found.setdefault(flag.casefold(), flag)
        return list(found.values())

    async def first_unseen_uid(self, folder: Folder) -> int | None:
        return await self.store.first_unseen(folder.id)

    async def claim_recent(self, folder: Folder) -> int:
        mark = await self.store.claim_recent(folder.id)
        if mark is None:
            raise FolderNotFound(f"folder {folder.name} was deleted")
        return mark

    async def highestmodseq(self, folder: Folder) -> tuple[int, int]:
        found = await self.store.folder_versions([folder.id])
        if folder.id not in found:
            raise FolderNotFound(f"folder {folder.name} was deleted")
        return found[folder.id]

    # -- writing ---------------------------------------------------------------------

    async def append(
        self,
        name: str,
        data: bytes,
        flags: Sequence[str] = (),
        internaldate: float | None = None,
    ) -> tuple[int, int]:
        account = await self._account()
        canonical = folder_name(name)
        if not data:
            raise MailboxError("an empty message cannot be stored")
        wanted = canonical_flags(flags)
        with _translated(canonical):
            return await self.store.append_message(
                account, canonical, bytes(data), wanted, internaldate
            )

    async def store_flags(
        self,
        folder: Folder,
        uids: UidRanges,
        mode: FlagMode,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]:
        account = await self._account()
        wanted = canonical_flags(flags)
        ranges = clip_ranges(uids)
        if not ranges:
            return [], []
        with _translated(folder.name):
            changed, refused = await self.store.store_flags(
                account, folder.id, ranges, mode, wanted, unchanged_since
            )
        return [_info(m) for m in changed], refused

    async def expunge(self, folder: Folder, uids: UidRanges | None = None) -> list[int]:
        account = await self._account()
        ranges = None if uids is None else clip_ranges(uids)
        if ranges == ():
            return []
        with _translated(folder.name):
            return await self.store.expunge(account, folder.id, ranges)

    async def remove(self, folder: Folder, uids: UidRanges) -> list[int]:
        account = await self._account()
        ranges = clip_ranges(uids)
        if ranges == ():
            return []
        with _translated(folder.name):
            return await self.store.expunge(account, folder.id, ranges, flagged_only=False)

    async def copy(self, folder: Folder, uids: UidRanges, target: str) -> CopyResult:
        return await self._copy(folder, uids, target, move=False)

    async def move(self, folder: Folder, uids: UidRanges, target: str) -> CopyResult:
        return await self._copy(folder, uids, target, move=True)

    async def _copy(self, folder: Folder, uids: UidRanges, target: str, *, move: bool
                    ) -> CopyResult:
        account = await self._account()
        canonical = folder_name(target)
        ranges = clip_ranges(uids)
        with _translated():
            if not ranges:
                record = await self.store.get_folder(account, canonical)
                if record is None:
                    raise FolderNotFound(f"no folder {canonical}")
                return CopyResult(record.uidvalidity, [])
            try:
                uidvalidity, pairs = await self.store.copy_messages(
                    account, folder.id, ranges, canonical, move=move
                )
            except NoSuchMailbox as exc:
                gone = canonical if exc.mailbox == canonical else folder.name
                raise FolderNotFound(f"no folder {gone}") from exc
        return CopyResult(uidvalidity, pairs)

    async def quota(self) -> Quota:
        found = await self.store.account_quota(self.address)
        if found is None:
            raise MailboxError("the account no longer exists")
        return Quota(used=found[0], limit=found[1])
