"""Counters shared by the worker processes of one node: a fixed table in shared memory.

``hayate serve`` forks one worker per core; shaping's limits (connections at once and rates
per (egress source, site), ``connections_per_destination``) must hold for the node, not per
worker. :class:`SharedTable` is what the workers share for that:

* **Memory.** One ``memfd`` (an anonymous file in RAM; elsewhere an unlinked temporary
  file) mapped ``MAP_SHARED``, created by the master *before* it forks: every worker, and
  every worker the master restarts later, inherits the same pages. The size is fixed at
  creation: ``capacity`` slots.
* **Lock.** A POSIX record lock (``fcntl.lockf``) on the same file, plus a thread lock for
  threads of one process (record locks are per process). A record lock is released by the
  kernel when its holder dies, so a worker killed inside a critical section cannot freeze
  the others (a semaphore such as ``multiprocessing.Lock`` would stay taken). Critical
  sections are a few reads and writes of one slot; an operation costs about 2.5 µs, half of
  it the two ``fcntl`` calls.
* **Slots.** Keyed by a 64-bit hash (BLAKE2b) of the key string, open addressing with linear
  probing over at most ``MAX_PROBE`` slots. A slot holds one token bucket (tokens, stamp,
  rate, burst) and, per worker index, the connections that worker holds, when it last
  failed to get one ("wants") and until when it gives way (see Fairness). Keys are never
  deleted; a slot whose state equals a fresh one (no connections held, nobody waiting,
  bucket full again) is *stale* and is reused for a new key, so sites that come and go do
  not fill the table. A worker caches where its keys are and checks the hash under the
  lock before trusting the cache.
* **Full table.** When no slot is free or stale within ``MAX_PROBE``, operations answer
  ``None`` and the caller falls back to its own share (:class:`NodeSlots` does so for
  connections, ``hayate.queue.nodelimits`` for rates), logging it once per process.
* **Dead workers.** Connections are counted per worker column, so :meth:`reset_worker` frees
  everything a dead worker held: the master calls it when a worker exits, and the restarted
  worker again before it starts delivering.
* **Clock.** Times are passed in by the caller. One key must always be used with one clock
  that every process agrees on (``time.time()`` or ``time.monotonic()``, both system-wide on
  Linux). A clock that steps back by more than ``CLOCK_STEP`` restarts the bucket's stamp.
* **Fairness.** A worker that cannot get a connection records the time ("wants"). While
  another worker wants, a worker is refused new connections once it holds its share (the
  limit divided among the workers holding or waiting, rounded up), and
  :meth:`SharedTable.give_way` tells it to give one back when it holds more than its share,
  or when it has had its turn and a waiting worker has none (a limit smaller than the number
  of workers that want it is taken in turns). A worker that gives way may not take a
  connection again for a moment while others wait (``until``), so the one it frees goes to
  them. A want older than ``WANT_TTL`` is ignored: a waiting worker asks again every retry,
  so only live wants count.

It is in ``core`` because both the queue (shaping limits) and delivery (the connection pool)
use it and delivery may not import the queue; it needs nothing of ours. A cluster of nodes
needs a different store (Redis) behind the same seams (``hayate.queue.contracts``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from functools import lru_cache

log = logging.getLogger("hayate.sharedtable")

CAPACITY = 8192  # slots; a busy node uses a few per (source, site) path and destination
MAX_PROBE = 32  # slots looked at for one key before the table counts as full
WANT_TTL = 1.0  # seconds a failed attempt to get a connection counts as "waiting"
CLOCK_STEP = 1.0  # seconds: a clock further back than this restarts a bucket's stamp
EPSILON = 1e-9  # tokens; absorbs float rounding so that waiting delay(now) is enough

_HEAD = struct.Struct("=Qdddd")  # key hash, tokens, stamp, rate (per second; 0: unused), burst
_FLOAT = struct.Struct("=d")
_COUNT = struct.Struct("=i")


@lru_cache(maxsize=65536)
def key_hash(key: str) -> int:
    """The 64-bit hash of a key; never 0 (0 marks an empty slot)."""
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return value or 1


def _anonymous_file() -> int:
    """A file in memory (memfd) where there is one, else an unlinked temporary file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("hayate-limits", os.MFD_CLOEXEC)
    with tempfile.NamedTemporaryFile(prefix="hayate-limits-", delete=False) as f:
        fd = os.dup(f.fileno())
    os.unlink(f.name)
    return fd


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


class SharedTable:
    """Token buckets and per-worker connection counts shared through a memfd; see the module
    docstring. Create it in the parent before forking the processes that share it."""

    def __init__(self, workers: int, capacity: int = CAPACITY) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.workers = workers
        self.capacity = capacity
        self._wants = struct.Struct(f"={workers}d")  # also the layout of the yields
        self._held = struct.Struct(f"={workers}i")
        self._wants_at = _HEAD.size
        self._yields_at = self._wants_at + self._wants.size
        self._held_at = self._yields_at + self._wants.size
        self.slot_size = (self._held_at + self._held.size + 7) // 8 * 8
        self._fd = _anonymous_file()
        os.ftruncate(self._fd, self.slot_size * capacity)
        self._mem = mmap.mmap(self._fd, self.slot_size * capacity, mmap.MAP_SHARED)
        self._thread_lock = threading.Lock()
        self._where: dict[str, int] = {}  # this process's cache: key → slot offset
        forked = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: _call(forked))

    def close(self) -> None:
        self._mem.close()
        os.close(self._fd)

    # --- locking and finding slots ------------------------------------------------------

    def _forked(self) -> None:
        """In a new child: the same memory, a fresh thread lock (another thread of the parent
        may have held it at the fork) and a fresh cache of slot offsets."""
        self._thread_lock = threading.Lock()
        self._where = {}

    def _lock(self) -> None:
        self._thread_lock.acquire()
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def _unlock(self) -> None:
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """For the rare operations; the frequent ones call _lock/_unlock directly."""
        self._lock()
        try:
            yield
        finally:
            self._unlock()

    def _slot(self, key: str, now: float | None, create: bool) -> int | None:
        """Offset of ``key``'s slot (under the lock); None when absent (or no room)."""
        wanted = key_hash(key)
        mem = self._mem
        cached = self._where.get(key)
        if cached is not None and _HEAD.unpack_from(mem, cached)[0] == wanted:
            return cached
        size = self.slot_size
        start = wanted % self.capacity
        reusable: int | None = None
        empty: int | None = None
        for step in range(min(MAX_PROBE, self.capacity)):
            offset = (start + step) % self.capacity * size
            found = _HEAD.unpack_from(mem, offset)[0]
            if found == wanted:
                self._where[key] = offset
                return offset
            if found == 0:
                empty = offset
                break  # keys are never deleted: the chain ends here
            if create and reusable is None and self._stale(offset, now):
                reusable = offset
        if not create:
            return None
        offset_new = reusable if reusable is not None else empty
        if offset_new is None:
            return None
        mem[offset_new : offset_new + size] = bytes(size)
        _HEAD.pack_into(mem, offset_new, wanted, 0.0, 0.0, 0.0, 0.0)
        self._where[key] = offset_new
        return offset_new

    def _stale(self, offset: int, now: float | None) -> bool:
        """The slot's state equals a fresh one: it may be given to another key."""
        mem = self._mem
        if any(self._held.unpack_from(mem, offset + self._held_at)):
            return False
        wants = self._wants.unpack_from(mem, offset + self._wants_at)
        _, tokens, stamp, rate, burst = _HEAD.unpack_from(mem, offset)
        if now is None:
            return rate == 0.0 and not any(wants)
        if any(w > now - WANT_TTL for w in wants):
            return False
        return bool(rate == 0.0 or tokens + (now - stamp) * rate >= burst)

    # --- token buckets ------------------------------------------------------------------

    def bucket_delay(self, key: str, per_second: float, burst: float, now: float) -> float | None:
        """Seconds until ``key``'s bucket has a token (0.0: now); None when the table is full."""
        self._lock()
        try:
            offset = self._slot(key, now, True)
            if offset is None:
                return None
            tokens = self._refill(offset, per_second, burst, now)
        finally:
            self._unlock()
        missing = 1.0 - tokens
        return 0.0 if missing <= EPSILON else missing / per_second

    def bucket_take(self, key: str, per_second: float, burst: float, now: float) -> bool:
        """Spend one token of ``key``'s bucket (debt allowed); False when the table is full."""
        self._lock()
        try:
            offset = self._slot(key, now, True)
            if offset is None:
                return False
            tokens = self._refill(offset, per_second, burst, now)
            _FLOAT.pack_into(self._mem, offset + 8, tokens - 1.0)
        finally:
            self._unlock()
        return True

    def _refill(self, offset: int, per_second: float, burst: float, now: float) -> float:
        """Bring the bucket to ``now`` at its stored rate, then adopt the caller's rate and
        burst (a governor may have changed them); stores and returns the tokens."""
        mem = self._mem
        hashed, tokens, stamp, rate, old_burst = _HEAD.unpack_from(mem, offset)
        if rate == 0.0:  # first use: full, like a new RateLimiter
            tokens, stamp = burst, now
        else:
            elapsed = now - stamp
            if elapsed > 0:
                tokens = min(old_burst, tokens + elapsed * rate)
                stamp = now
            elif elapsed < -CLOCK_STEP:
                stamp = now
        tokens = min(tokens, burst)
        _HEAD.pack_into(mem, offset, hashed, tokens, stamp, per_second, burst)
        return float(tokens)

    # --- connections --------------------------------------------------------------------

    def acquire(
        self, key: str, worker: int, limit: int, now: float, fair: bool = True
    ) -> bool | None:
        """Count one more connection of ``worker`` if the node stays within ``limit`` and,
        while others wait, the worker is within its share and not giving way; None when the
        table is full. Without ``fair`` only the node's total counts and nobody waits (a
        plain limit, such as sessions per user, where refusing one worker for another's
        sake would refuse a client that is within the limit)."""
        self._lock()
        try:
            offset = self._slot(key, now, True)
            if offset is None:
                return None
            mem = self._mem
            held = list(self._held.unpack_from(mem, offset + self._held_at))
            wants = list(self._wants.unpack_from(mem, offset + self._wants_at))
            ok: bool = sum(held) < limit
            if not fair:
                if ok:
                    held[worker] += 1
                    self._held.pack_into(mem, offset + self._held_at, *held)
                return ok
            if ok and _others_want(wants, worker, now):
                yields = self._wants.unpack_from(mem, offset + self._yields_at)
                ok = bool(now >= yields[worker] and held[worker] < _share(held, wants, limit, now))
            if ok:
                held[worker] += 1
                wants[worker] = 0.0
                self._held.pack_into(mem, offset + self._held_at, *held)
            else:
                wants[worker] = now
            _FLOAT.pack_into(mem, offset + self._wants_at + 8 * worker, wants[worker])
            return ok
        finally:
            self._unlock()

    def release(self, key: str, worker: int) -> None:
        """One connection of ``worker`` counted by :meth:`acquire` is over."""
        self._lock()
        try:
            offset = self._slot(key, None, False)
            if offset is None:
                return
            at = offset + self._held_at + 4 * worker
            (count,) = _COUNT.unpack_from(self._mem, at)
            _COUNT.pack_into(self._mem, at, max(0, count - 1))
        finally:
            self._unlock()

    def unwant(self, key: str, worker: int) -> None:
        """``worker`` no longer waits for a connection of ``key``."""
        with self._locked():
            offset = self._slot(key, None, False)
            if offset is not None:
                _FLOAT.pack_into(self._mem, offset + self._wants_at + 8 * worker, 0.0)

    def give_way(self, key: str, worker: int, limit: int, now: float, turn_over: bool,
                 until: float) -> bool:
        """Should ``worker`` give one of its connections to a worker that waits? Yes when it
        holds more than its share, or when ``turn_over`` (it has held connections for a
        long while) and a waiting worker has none. If so, it may not take a connection
        again before ``until`` while others wait (so the one it frees goes to them)."""
        self._lock()
        try:
            offset = self._slot(key, None, False)
            if offset is None:
                return False
            mem = self._mem
            held = self._held.unpack_from(mem, offset + self._held_at)
            wants = self._wants.unpack_from(mem, offset + self._wants_at)
            if not _others_want(wants, worker, now) or held[worker] == 0:
                return False
            recent = now - WANT_TTL
            starved = any(w > recent and h == 0
                          for i, (h, w) in enumerate(zip(held, wants, strict=True))
                          if i != worker)
            if held[worker] > _share(held, wants, limit, now) or (turn_over and starved):
                _FLOAT.pack_into(mem, offset + self._yields_at + 8 * worker, until)
                return True
            return False
        finally:
            self._unlock()

    def held(self, key: str) -> int | None:
        """Connections of ``key`` counted node-wide (None: the key has no slot)."""
        with self._locked():
            offset = self._slot(key, None, False)
            if offset is None:
                return None
            return int(sum(self._held.unpack_from(self._mem, offset + self._held_at)))

    def held_by(self, key: str, worker: int) -> int:
        with self._locked():
            offset = self._slot(key, None, False)
            if offset is None:
                return 0
            return int(self._held.unpack_from(self._mem, offset + self._held_at)[worker])

    def reset_worker(self, worker: int) -> int:
        """Forget what ``worker`` held and wanted (it died); returns the connections freed."""
        freed = 0
        mem = self._mem
        with self._locked():
            for index in range(self.capacity):
                offset = index * self.slot_size
                if _HEAD.unpack_from(mem, offset)[0] == 0:
                    continue
                at = offset + self._held_at + 4 * worker
                (count,) = _COUNT.unpack_from(mem, at)
                if count:
                    freed += count
                    _COUNT.pack_into(mem, at, 0)
                _FLOAT.pack_into(mem, offset + self._wants_at + 8 * worker, 0.0)
                _FLOAT.pack_into(mem, offset + self._yields_at + 8 * worker, 0.0)
        return freed


def _others_want(wants: tuple[float, ...] | list[float], worker: int, now: float) -> bool:
    recent = now - WANT_TTL
    return any(w > recent for i, w in enumerate(wants) if i != worker)


def _share(held: tuple[int, ...] | list[int], wants: tuple[float, ...] | list[float],
           limit: int, now: float) -> int:
    """A worker's share while others wait: the limit divided among the workers holding or
    waiting, rounded up."""
    recent = now - WANT_TTL
    sharing = sum(1 for h, w in zip(held, wants, strict=True) if h > 0 or w > recent)
    return math.ceil(limit / max(1, sharing))


class NodeSlots:
    """Connections per key counted node-wide for one worker, through a :class:`SharedTable`.

    When the table has no room for a key, the worker falls back to its own share of the
    limit (``limit // workers``, at least 1), counted in this process only; it says so in
    the log once.
    """

    def __init__(self, table: SharedTable, worker: int) -> None:
        if not 0 <= worker < table.workers:
            raise ValueError(f"worker {worker} outside 0..{table.workers - 1}")
        self.table = table
        self.worker = worker
        self._local: dict[str, int] = {}  # keys counted here because the table was full
        self._warned = False

    def acquire(self, key: str, limit: int, now: float, fair: bool = True) -> bool:
        if key not in self._local:
            got = self.table.acquire(key, self.worker, limit, now, fair)
            if got is not None:
                return got
            self.warn_full()
        count = self._local.get(key, 0)
        if count >= max(1, limit // self.table.workers):
            return False
        self._local[key] = count + 1  # counted here until its connections are over
        return True

    def release(self, key: str) -> None:
        count = self._local.get(key)
        if count is None:
            self.table.release(key, self.worker)
        elif count <= 1:
            del self._local[key]
        else:
            self._local[key] = count - 1

    def unwant(self, key: str) -> None:
        if key not in self._local:
            self.table.unwant(key, self.worker)

    def give_way(self, key: str, limit: int, now: float, turn_over: bool,
                 until: float) -> bool:
        if key in self._local:
            return False
        return self.table.give_way(key, self.worker, limit, now, turn_over, until)

    def held(self, key: str) -> int:
        """Connections of ``key`` node-wide (this worker's own when the table is full)."""
        if key in self._local:
            return self._local[key]
        count = self.table.held(key)
        return 0 if count is None else count

    def warn_full(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the node's shared limit table (%d slots) is full: limits of new "
                        "sites are split between the %d workers instead",
                        self.table.capacity, self.table.workers)
