"""The store as the HTTP handlers reach it: the worker's own, or one opened on first use.

The runtime passes the worker's store to ``start_http_server``; without one (a standalone
app, an older runtime) :class:`StoreAccess` opens the configured store the first time a
handler needs it and closes it when the HTTP server stops.
"""

from __future__ import annotations

import asyncio

from hayate.config import Config
from hayate.store.base import Store


class StoreAccess:
    def __init__(self, cfg: Config, store: Store | None = None) -> None:
        self.cfg = cfg
        self._store = store
        self._owned = False
        self._lock = asyncio.Lock()

    async def get(self) -> Store:
        if self._store is not None:
            return self._store
        async with self._lock:
            if self._store is None:
                from hayate.store import open_store

                store = open_store(self.cfg.store.url, self.cfg.sqlite_path)
                await store.create()
                self._store, self._owned = store, True
        return self._store

    async def close(self) -> None:
        """Close the store if it was opened here (the worker's own is left alone)."""
        if self._owned and self._store is not None:
            store, self._store, self._owned = self._store, None, False
            await store.close()
