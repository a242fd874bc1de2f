"""Batched recording of delivery events (implements ``EventSink``).

``record(event)`` appends to an in-memory buffer and returns (about a microsecond; it never
waits for I/O and never raises). A background task writes the buffer every
``flush_interval`` seconds, or as soon as ``batch_size`` events are waiting, in batches of
at most ``batch_size`` events, one transaction (one executemany) per batch.

Failures. A batch whose write fails is put back at the front of the buffer and tried again
at the next flush; meanwhile the buffer keeps growing up to ``[events] max_buffer`` events
(100,000 by default, ~30 MB), beyond which the oldest events are dropped with a warning
(counted in ``dropped``): delivery must never wait for, or fail because of, the events table.

Retention. About once an hour (and once at start) the task deletes events older than
``retention_days``. ``stop()`` ends the task and makes a last flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from hayate.config import EventsConfig
from hayate.core.events import DeliveryEvent
from hayate.core.seams import Clock
from hayate.store.base import Store

log = logging.getLogger("hayate.events")

RETENTION_INTERVAL = 3600.0


class EventRecorder:
    """Buffers events in memory and writes them to the store in batches."""

    def __init__(self, store: Store, config: EventsConfig, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.max_buffer = max(1, config.max_buffer)
        self._batch = max(1, config.batch_size)
        self._buffer: deque[DeliveryEvent] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_retention: float | None = None
        self._flush_lock = asyncio.Lock()
        self.written = 0  # events stored so far
        self.dropped = 0  # events lost to a full buffer
        self.failures = 0  # failed batch writes

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- EventSink ----------------------------------------------------------------------

    def record(self, event: DeliveryEvent) -> None:
        if not self.config.enabled:
            return
        buffer = self._buffer
        if len(buffer) >= self.max_buffer:
            buffer.popleft()
            self._note_drop(1)
        buffer.append(event)
        if len(buffer) >= self._batch and self._wake is not None:
            self._wake.set()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the background writer (needs a running event loop)."""
        if self._task is not None or not self.config.enabled:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-recorder")

    async def stop(self) -> None:
        """Stop the writer and flush what is left (one last try)."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            assert self._wake is not None
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake = None
        await self.flush()
        if self._buffer:
            log.warning("%d delivery events could not be written at shutdown", len(self._buffer))

    async def flush(self) -> int:
        """Write everything buffered now, batch by batch; returns how many were written.

        Stops at the first failed batch (it goes back to the front of the buffer).
        """
        done = 0
        async with self._flush_lock:
            while self._buffer:
                take = min(self._batch, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(take)]
                try:
                    await self.store.insert_events(batch)
                except Exception as exc:  # the store is down or the disk is full
                    self.failures += 1
                    self._buffer.extendleft(reversed(batch))
                    self._trim()
                    log.warning(
                        "could not write %d delivery events (%d waiting; retried in %g s): %s",
                        len(batch), len(self._buffer), self.config.flush_interval, exc,
                    )
                    break
                done += len(batch)
                self.written += len(batch)
        return done

    async def sweep(self) -> int:
        """Delete events older than ``retention_days``; returns how many went."""
        cutoff = self.clock.now() - self.config.retention_days * 86400.0
        removed = await self.store.delete_events_before(cutoff)
        if removed:
            log.info("deleted %d delivery events older than %d days", removed,
                     self.config.retention_days)
        return removed

    # -- internals ----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.flush_interval):
                    await wake.wait()
            wake.clear()
            if self._stopping:
                break
            await self.flush()
            await self._maybe_sweep()

    async def _maybe_sweep(self) -> None:
        now = self.clock.now()
        last = self._last_retention
        if last is not None and now - last < RETENTION_INTERVAL:
            return
        self._last_retention = now
        try:
            await self.sweep()
        except Exception as exc:
            log.warning("could not delete old delivery events: %s", exc)

    def _trim(self) -> None:
        excess = len(self._buffer) - self.max_buffer
        for _ in range(max(0, excess)):
            self._buffer.popleft()
        if excess > 0:
            self._note_drop(excess)

    def _note_drop(self, count: int) -> None:
        before = self.dropped
        self.dropped += count
        # One warning for the first loss and then one per 10,000 lost.
        if before == 0 or before // 10_000 != self.dropped // 10_000:
            log.warning(
                "event buffer full (%d): %d oldest delivery events dropped so far",
                self.max_buffer, self.dropped,
            )
