"""The folder watcher: tells IMAP sessions (IDLE, NOOP, the end of a command) that a folder
changed, whoever changed it: this process, another worker or another node.

One :class:`FolderWatcher` per process. A session that wants to know calls
:meth:`FolderWatcher.wait_change` with what it knows of the folder (highestmodseq and
uidnext); the watcher keeps one waiter per call and, only while there is at least one,
reads the (highestmodseq, uidnext) of every watched folder in ONE store query per
``interval`` (a chunk of 400 folders per statement beyond that). A waiter whose folder
moved on (or vanished) wakes with True; one that reaches its timeout gets False.
:meth:`notify` wakes the waiters of a folder in this process at once (a hook for code that
knows it just changed something). A failed poll is logged and tried again next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from hayate.store.base import Store, StoreError

log = logging.getLogger("hayate.mailbox.watch")


@dataclass(eq=False, slots=True)
class _Waiter:
    modseq: int
    uidnext: int
    woken: asyncio.Future[bool] = field(default_factory=lambda: _loop().create_future())

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(True)


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class FolderWatcher:
    """Polls the store for changes to the folders sessions wait on."""

    def __init__(self, store: Store, interval: float = 0.2) -> None:
        if interval <= 0:
            raise ValueError("interval must be above 0")
        self.store = store
        self.interval = interval
        self.polls = 0  # store queries made so far (for tests and stats)
        self._waiters: dict[int, set[_Waiter]] = {}
        self._someone_waits = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        """Start polling (on the running loop); calling it again is harmless."""
        if self._task is None and not self._stopped:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="hayate-folder-watcher"
            )

    async def stop(self) -> None:
        """Stop polling; waiters still waiting wake with False."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.woken.done():
                    waiter.woken.set_result(False)
        self._waiters.clear()

    async def wait_change(
        self, folder_id: int, known_modseq: int, known_uidnext: int, timeout: float
    ) -> bool:
        """True once the folder's highestmodseq or uidnext differs from what the caller
        knows (or the folder is gone); False after ``timeout`` seconds without a change."""
        if self._stopped:
            return False
        self.start()
        waiter = _Waiter(known_modseq, known_uidnext)
        self._waiters.setdefault(folder_id, set()).add(waiter)
        self._someone_waits.set()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.woken), max(0.0, timeout))
        except TimeoutError:
            return False
        finally:
            self._forget(folder_id, waiter)

    def notify(self, folder_id: int) -> None:
        """Wake every waiter of ``folder_id`` in this process now."""
        for waiter in list(self._waiters.get(folder_id, ())):
            waiter.wake()

    @property
    def watched(self) -> int:
        """How many folders someone waits on."""
        return len(self._waiters)

    def _forget(self, folder_id: int, waiter: _Waiter) -> None:
        waiters = self._waiters.get(folder_id)
        if waiters is None:
            return
        waiters.discard(waiter)
        if not waiters:
            del self._waiters[folder_id]
        if not self._waiters:
            self._someone_waits.clear()

    async def _run(self) -> None:
        while True:
            await self._someone_waits.wait()
            await asyncio.sleep(self.interval)
            if self._waiters:
                await self._poll()

    async def _poll(self) -> None:
        ids = sorted(self._waiters)
        self.polls += 1
        try:
            versions = await self.store.folder_versions(ids)
        except StoreError:
            log.exception("folder watcher: reading the folders' modseqs failed")
            return
        for folder_id in ids:
            now = versions.get(folder_id)
            for waiter in list(self._waiters.get(folder_id, ())):
                if now is None or now != (waiter.modseq, waiter.uidnext):
                    waiter.wake()
