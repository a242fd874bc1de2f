"""The store: shared state that is not the per-node spool.

Accounts (argon2 password hashes), aliases, the mailbox store (mail delivered to local
accounts, served later over IMAP and POP3), the suppression list and delivery events,
behind one async interface (:class:`hayate.store.base.Store`) with two engines: SQLite for
one node (the default) and PostgreSQL for several. :func:`open_store` picks the engine from
``[store] url``.

Modules: ``base`` (interface, values, errors), ``addresses`` (normalization), ``passwords``
(argon2), ``schema`` (tables and migrations), ``ops`` (every transaction, sans-I/O;
``suppression_ops`` and ``event_ops`` hold those of the suppression list and the events,
``folder_ops`` and ``mailbox_ops`` those of IMAP folders, messages, flags and locks),
``sqlstore`` (the interface over ``ops``), ``sqlite`` and ``postgres`` (the engines).
The spool (``spool*``) lives in this package too but is separate from all of the above.
"""

from __future__ import annotations

from pathlib import Path

from hayate.core.seams import Clock
from hayate.store.base import Store, StoreError
from hayate.store.passwords import Passwords


def open_store(
    url: str,
    sqlite_path: Path,
    *,
    passwords: Passwords | None = None,
    clock: Clock | None = None,
) -> Store:
    """Build the store named by ``url`` (not yet connected: ``await store.create()``).

    ``"sqlite"`` → SQLite at ``sqlite_path``; ``"postgresql://..."`` (or ``postgres://``)
    → PostgreSQL. Anything else raises StoreError.
    """
    if url == "sqlite":
        from hayate.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path, passwords=passwords, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        from hayate.store.postgres import PostgresStore

        return PostgresStore(url, passwords=passwords, clock=clock)
    raise StoreError(f"unknown store url {url!r}: expected 'sqlite' or 'postgresql://...'")
