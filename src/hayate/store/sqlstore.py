"""The :class:`Store` interface implemented once over SQL: checks arguments, hashes passwords,
and runs the transactions of ``hayate.store.ops`` (and of ``folder_ops``/``mailbox_ops`` for
the mailbox service, ``suppression_ops``, ``event_ops``) through the engine's ``_run``.

An engine subclass supplies the connection handling: ``create``, ``close`` and ``_run``,
which drives one op inside one transaction (a write transaction when ``write`` is true).
Passwords are hashed before the transaction starts, so no lock is held while argon2 runs.
"""

from __future__ import annotations

from abc import abstractmethod
from array import array
from collections.abc import Callable, Sequence

from hayate.core.events import DeliveryEvent
from hayate.core.seams import Clock, SystemClock
from hayate.store import event_ops, folder_ops, mailbox_ops, ops, suppression_ops
from hayate.store.addresses import (
    domain_of,
    join_flags,
    normalize_address,
    normalize_alias_source,
    normalize_domain,
    normalize_mailbox,
)
from hayate.store.base import (
    ANY_DOMAIN,
    INBOX,
    SUPPRESSION_SOURCES,
    Account,
    Alias,
    FlagMode,
    FolderChanges,
    FolderCounts,
    FolderRecord,
    InvalidAddress,
    MailboxInfo,
    MessageRow,
    NoSuchAccount,
    Store,
    StoredMessage,
    Suppression,
    UidRanges,
)
from hayate.store.passwords import Passwords
from hayate.store.schema import Dialect

OpFactory = Callable[[], ops.Op[ops.T]]


class SqlStore(Store):
    """Everything but the connection; see the engines ``SqliteStore`` and ``PostgresStore``."""

    dialect: Dialect

    def __init__(self, passwords: Passwords | None = None, clock: Clock | None = None) -> None:
        self._own_passwords = passwords is None
        self.passwords = passwords or Passwords()
        self.clock: Clock = clock or SystemClock()

    @abstractmethod
    async def _run(self, op: OpFactory[ops.T], *, write: bool) -> ops.T:
        """Run the op made by ``op()`` in one transaction and return its result."""

    def _close_passwords(self) -> None:
        if self._own_passwords:
            self.passwords.close()

    async def migrate(self) -> list[int]:
        now = self.clock.now()
        return await self._run(lambda: ops.migrate(self.dialect, now), write=True)

    async def schema_version(self) -> int:
        return await self._run(ops.schema_version, write=False)

    # -- accounts ------------------------------------------------------------------------

    async def add_account(self, address: str, password: str, quota_bytes: int = 0) -> Account:
        addr = normalize_address(address)
        _check_password(password)
        _check_quota(quota_bytes)
        hashed = await self.passwords.hash(password)
        now = self.clock.now()
        return await self._run(
            lambda: ops.add_account(addr, domain_of(addr), hashed, quota_bytes, now), write=True
        )

    async def delete_account(self, address: str) -> bool:
        addr = normalize_address(address)
        return await self._run(lambda: ops.delete_account(addr), write=True)

    async def get_account(self, address: str) -> Account | None:
        try:
            addr = normalize_address(address)
        except InvalidAddress:
            return None
        return await self._run(lambda: ops.get_account(addr), write=False)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        dom = None if domain is None else normalize_domain(domain)
        return await self._run(lambda: ops.list_accounts(dom), write=False)

    async def set_password(self, address: str, password: str) -> bool:
        addr = normalize_address(address)
        _check_password(password)
        hashed = await self.passwords.hash(password)
        return await self._run(lambda: ops.set_password(addr, hashed), write=True)

    async def set_quota(self, address: str, quota_bytes: int) -> bool:
        addr = normalize_address(address)
        _check_quota(quota_bytes)
        return await self._run(lambda: ops.set_quota(addr, quota_bytes), write=True)

    async def set_disabled(self, address: str, disabled: bool) -> bool:
        addr = normalize_address(address)
        return await self._run(lambda: ops.set_disabled(addr, disabled), write=True)

    async def authenticate(self, address: str, password: str) -> Account | None:
        try:
            addr = normalize_address(address)
        except InvalidAddress:
            await self.passwords.verify_dummy(password)
            return None
        found = await self._run(lambda: ops.credentials(addr), write=False)
        if found is None:
            await self.passwords.verify_dummy(password)
            return None
        account_id, stored, account = found
        if not await self.passwords.verify(stored, password) or account.disabled:
            return None
        if self.passwords.needs_rehash(stored):
            fresh = await self.passwords.hash(password)
            await self._run(lambda: ops.replace_hash(account_id, stored, fresh), write=True)
        return account

    # -- aliases -------------------------------------------------------------------------

    async def add_alias(self, source: str, targets: list[str]) -> Alias:
        src = normalize_alias_source(source)
        if isinstance(targets, str):
            raise TypeError("targets must be a list of addresses, not a string")
        unique = list(dict.fromkeys(normalize_address(t) for t in targets))
        if not unique:
            raise InvalidAddress(f"alias {src} needs at least one target")
        return await self._run(lambda: ops.set_alias(src, unique), write=True)

    async def delete_alias(self, source: str) -> bool:
        src = normalize_alias_source(source)
        return await self._run(lambda: ops.delete_alias(src), write=True)

    async def get_alias(self, source: str) -> list[str] | None:
        try:
            src = normalize_alias_source(source)
        except InvalidAddress:
            return None
        return await self._run(lambda: ops.get_alias(src), write=False)

    async def list_aliases(self) -> list[Alias]:
        return await self._run(ops.list_aliases, write=False)

    async def expand(self, address: str, max_depth: int = 10) -> list[str]:
        addr = normalize_address(address)
        return await self._run(lambda: ops.expand(addr, max_depth), write=False)

    # -- mailboxes -----------------------------------------------------------------------

    async def create_mailbox(
        self, address: str, name: str, special_use: str | None = None
    ) -> MailboxInfo:
        addr = normalize_address(address)
        box = normalize_mailbox(name)
        now = self.clock.now()
        return await self._run(lambda: ops.create_mailbox(addr, box, special_use, now), write=True)

    async def list_mailboxes(self, address: str) -> list[MailboxInfo]:
        addr = normalize_address(address)
        return await self._run(lambda: ops.list_mailboxes(addr), write=False)

    async def deliver(
        self,
        address: str,
        data: bytes,
        mailbox: str = INBOX,
        flags: tuple[str, ...] = (),
        internaldate: float | None = None,
    ) -> int:
        addr = normalize_address(address)
        box = normalize_mailbox(mailbox)
        join_flags(flags)  # refuse bad flags before the transaction
        when = self.clock.now() if internaldate is None else internaldate
        body = bytes(data)
        return await self._run(lambda: ops.deliver(addr, box, body, flags, when), write=True)

    async def deliver_many(self, items: list[tuple[str, bytes]]) -> list[int]:
        if not items:
            return []
        batch = [(normalize_address(a), bytes(d)) for a, d in items]
        when = self.clock.now()
        return await self._run(lambda: ops.deliver_many(batch, when), write=True)

    async def list_messages(self, address: str, mailbox: str = INBOX) -> list[StoredMessage]:
        addr, box = normalize_address(address), normalize_mailbox(mailbox)
        return await self._run(lambda: ops.list_messages(addr, box), write=False)

    async def fetch_message(self, address: str, mailbox: str, uid: int) -> bytes | None:
        addr, box = normalize_address(address), normalize_mailbox(mailbox)
        return await self._run(lambda: ops.fetch_message(addr, box, uid), write=False)

    async def count_messages(self, address: str, mailbox: str = INBOX) -> int:
        addr, box = normalize_address(address), normalize_mailbox(mailbox)
        return await self._run(lambda: ops.count_messages(addr, box), write=False)

    async def delete_message(self, address: str, mailbox: str, uid: int) -> bool:
        addr, box = normalize_address(address), normalize_mailbox(mailbox)
        return await self._run(lambda: ops.delete_message(addr, box, uid), write=True)

    # -- the mailbox service ---------------------------------------------------------------

    async def open_folders(self, address: str) -> int:
        addr = normalize_address(address)
        state = await self._run(lambda: folder_ops.account_state(addr), write=False)
        if state is None:
            raise NoSuchAccount(addr)
        account_id, ready = state
        if not ready:
            now = self.clock.now()
            await self._run(
                lambda: folder_ops.ensure_default_folders(account_id, now), write=True
            )
        return account_id

    async def account_quota(self, address: str) -> tuple[int, int] | None:
        try:
            addr = normalize_address(address)
        except InvalidAddress:
            return None
        return await self._run(lambda: folder_ops.account_quota(addr), write=False)

    async def list_folders(self, account_id: int) -> list[FolderRecord]:
        return await self._run(lambda: folder_ops.list_folders(account_id), write=False)

    async def get_folder(self, account_id: int, name: str) -> FolderRecord | None:
        return await self._run(lambda: folder_ops.get_folder(account_id, name), write=False)

    async def create_folder(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> FolderRecord:
        now = self.clock.now()
        return await self._run(
            lambda: folder_ops.create_folder(account_id, name, special_use, now), write=True
        )

    async def delete_folder(self, account_id: int, name: str) -> None:
        await self._run(lambda: folder_ops.delete_folder(account_id, name), write=True)

    async def rename_folder(self, account_id: int, old: str, new: str) -> None:
        now = self.clock.now()
        await self._run(lambda: folder_ops.rename_folder(account_id, old, new, now), write=True)

    async def subscribe_folder(self, account_id: int, name: str, subscribed: bool) -> bool:
        return await self._run(
            lambda: folder_ops.subscribe_folder(account_id, name, subscribed), write=True
        )

    async def folder_status(self, account_id: int, name: str) -> FolderCounts | None:
        return await self._run(lambda: folder_ops.folder_status(account_id, name), write=False)

    async def folder_versions(self, folder_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        if not folder_ids:
            return {}
        ids = list(folder_ids)
        return await self._run(lambda: folder_ops.folder_versions(ids), write=False)

    async def folder_uids(self, folder_id: int) -> array[int]:
        dialect = self.dialect.name
        return await self._run(lambda: mailbox_ops.folder_uids(folder_id, dialect), write=False)

    async def folder_messages(
        self,
        folder_id: int,
        uids: UidRanges | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        bodies: bool = False,
    ) -> list[MessageRow]:
        if limit is not None and limit < 1:
            raise ValueError("limit must be 1 or more")
        return await self._run(
            lambda: mailbox_ops.folder_messages(folder_id, uids, after, limit, bodies),
            write=False,
        )

    async def folder_bodies(self, folder_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        if not uids:
            return {}
        wanted = list(uids)
        return await self._run(lambda: mailbox_ops.folder_bodies(folder_id, wanted), write=False)

    async def folder_changes(self, folder_id: int, modseq: int) -> FolderChanges | None:
        dialect = self.dialect.name
        return await self._run(
            lambda: mailbox_ops.folder_changes(folder_id, modseq, dialect), write=False
        )

    async def folder_flag_sets(self, folder_id: int) -> list[str]:
        return await self._run(lambda: mailbox_ops.folder_flag_sets(folder_id), write=False)

    async def first_unseen(self, folder_id: int) -> int | None:
        return await self._run(lambda: mailbox_ops.first_unseen(folder_id), write=False)

    async def claim_recent(self, folder_id: int) -> int | None:
        return await self._run(lambda: mailbox_ops.claim_recent(folder_id), write=True)

    async def append_message(
        self,
        account_id: int,
        name: str,
        data: bytes,
        flags: tuple[str, ...] = (),
        internaldate: float | None = None,
    ) -> tuple[int, int]:
        join_flags(flags)  # refuse bad flags before the transaction
        when = self.clock.now() if internaldate is None else internaldate
        body = bytes(data)
        return await self._run(
            lambda: mailbox_ops.append_message(account_id, name, body, flags, when), write=True
        )

    async def store_flags(
        self,
        account_id: int,
        folder_id: int,
        uids: UidRanges,
        mode: FlagMode,
        flags: tuple[str, ...],
        unchanged_since: int | None = None,
    ) -> tuple[list[StoredMessage], list[int]]:
        join_flags(flags)
        if mode not in ("set", "add", "remove"):
            raise ValueError(f"flag mode must be set, add or remove, not {mode!r}")
        return await self._run(
            lambda: mailbox_ops.store_flags(
                account_id, folder_id, uids, mode, flags, unchanged_since
            ),
            write=True,
        )

    async def expunge(
        self,
        account_id: int,
        folder_id: int,
        uids: UidRanges | None = None,
        *,
        flagged_only: bool = True,
    ) -> list[int]:
        return await self._run(
            lambda: mailbox_ops.expunge(account_id, folder_id, uids, flagged_only), write=True
        )

    async def copy_messages(
        self, account_id: int, folder_id: int, uids: UidRanges, target: str, *, move: bool
    ) -> tuple[int, list[tuple[int, int]]]:
        return await self._run(
            lambda: mailbox_ops.copy_messages(account_id, folder_id, uids, target, move),
            write=True,
        )

    async def find_folders(self, name_or_special_use: str) -> list[int]:
        if name_or_special_use.startswith("\\"):
            use: str | None = name_or_special_use
            name: str | None = None
        else:
            use, name = None, normalize_mailbox(name_or_special_use)
        return await self._run(lambda: folder_ops.find_folders(name, use), write=False)

    async def expunge_older(self, folder_id: int, before: float, limit: int) -> int:
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        return await self._run(
            lambda: mailbox_ops.expunge_older(folder_id, before, limit), write=True
        )

    async def acquire_lock(self, account: str, holder: str, ttl: float) -> bool:
        now = self.clock.now()
        return await self._run(
            lambda: folder_ops.acquire_lock(account, holder, now, ttl), write=True
        )

    async def refresh_lock(self, account: str, holder: str, ttl: float) -> bool:
        now = self.clock.now()
        return await self._run(
            lambda: folder_ops.refresh_lock(account, holder, now, ttl), write=True
        )

    async def release_lock(self, account: str, holder: str) -> None:
        await self._run(lambda: folder_ops.release_lock(account, holder), write=True)

    # -- suppression list ----------------------------------------------------------------

    async def add_suppression(
        self,
        domain: str,
        address: str,
        reason: str = "",
        source: str = "manual",
        detail: str = "",
    ) -> bool:
        if source not in SUPPRESSION_SOURCES:
            raise ValueError(f"suppression source must be one of {SUPPRESSION_SOURCES}")
        entry = self._suppression(domain, address, reason, source, detail)
        return await self._run(lambda: suppression_ops.add(entry), write=True)

    async def remove_suppression(self, address: str, domain: str | None = None) -> int:
        addr = normalize_address(address)
        dom = None if domain is None else _sending_domain(domain)
        return await self._run(lambda: suppression_ops.remove(addr, dom), write=True)

    async def list_suppressions(
        self, domain: str | None = None, address: str | None = None
    ) -> list[Suppression]:
        dom = None if domain is None else _sending_domain(domain)
        addr = None if address is None else normalize_address(address)
        return await self._run(lambda: suppression_ops.list_entries(dom, addr), write=False)

    async def check_suppressions(self, domain: str, addresses: list[str]) -> set[str]:
        if not addresses:
            return set()
        dom = _sending_domain(domain)
        wanted = [a.strip().lower() for a in addresses]
        return await self._run(lambda: suppression_ops.check(dom, wanted), write=False)

    async def note_soft_bounce(
        self,
        domain: str,
        address: str,
        *,
        window: float,
        limit: int,
        reason: str = "",
        detail: str = "",
    ) -> tuple[int, bool]:
        entry = self._suppression(domain, address, reason, "soft-bounces", detail)
        return await self._run(
            lambda: suppression_ops.note_soft_bounce(entry, window, max(1, limit)), write=True
        )

    def _suppression(
        self, domain: str, address: str, reason: str, source: str, detail: str
    ) -> Suppression:
        """An entry made now, its domain and address normalized (InvalidAddress if bad)."""
        return Suppression(
            _sending_domain(domain), normalize_address(address), reason, source,
            self.clock.now(), detail,
        )

    async def prune_soft_bounces(self, before: float) -> int:
        return await self._run(lambda: suppression_ops.prune_soft_bounces(before), write=True)

    # -- delivery events -----------------------------------------------------------------

    async def insert_events(self, events: list[DeliveryEvent]) -> int:
        if not events:
            return 0
        batch = list(events)
        return await self._run(lambda: event_ops.insert(batch), write=True)

    async def query_events(
        self,
        *,
        recipient: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kind: str | None = None,
        queue_id: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryEvent]:
        rcpt = None if recipient is None else recipient.strip().lower()
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        return await self._run(
            lambda: event_ops.query(rcpt, since, until, kind, queue_id, limit), write=False
        )

    async def event_sender(self, queue_id: str) -> str | None:
        return await self._run(lambda: event_ops.sender_of(queue_id), write=False)

    async def delete_events_before(self, time: float) -> int:
        return await self._run(lambda: event_ops.delete_before(time), write=True)


def _sending_domain(domain: str) -> str:
    value = domain.strip()
    return ANY_DOMAIN if value == ANY_DOMAIN else normalize_domain(value)


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not password:
        raise ValueError("a password must be a non-empty string")


def _check_quota(quota_bytes: int) -> None:
    if quota_bytes < 0:
        raise ValueError("quota_bytes must be 0 (unlimited) or more")
