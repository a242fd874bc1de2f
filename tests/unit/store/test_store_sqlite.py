"""What only the SQLite engine promises: WAL on disk, several processes on one file, commits
that survive a killed process, and lock waits that do not freeze the event loop."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from tests.support.store import fast_passwords

from hayate.store.base import StoreError
from hayate.store.sqlite import SqliteStore

# A worker process: opens the same file, says "ready", waits for "go", delivers N messages
# concurrently and prints their UIDs.
WORKER = r"""
import asyncio, sys
from pathlib import Path
from argon2 import PasswordHasher
from hayate.store.passwords import Passwords
from hayate.store.sqlite import SqliteStore

async def main() -> None:
    path, address, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    cheap = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    store = SqliteStore(Path(path), passwords=cheap)
    async with store:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        uids = await asyncio.gather(*(store.deliver(address, b"from %d" % i) for i in range(count)))
        print(" ".join(map(str, uids)), flush=True)
        if mode == "hang":
            await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _spawn(path: Path, count: int, mode: str = "exit") -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        str(path),
        "amy@example.com",
        str(count),
        mode,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert line == b"ready\n"
    return proc


async def _uids(proc: asyncio.subprocess.Process) -> list[int]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    return [int(u) for u in line.split()]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "hayate.db", passwords=fast_passwords())
    await store.create()
    await store.migrate()
    await store.add_account("amy@example.com", "pw")
    await store.close()
    return store


async def test_file_is_in_wal_mode(sqlite_store: SqliteStore) -> None:
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_two_processes_and_this_one_never_share_a_uid(sqlite_store: SqliteStore) -> None:
    procs = [await _spawn(sqlite_store.path, 150) for _ in range(2)]
    async with SqliteStore(sqlite_store.path, passwords=fast_passwords()) as store:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        mine = await asyncio.gather(
            *(store.deliver("amy@example.com", b"here") for _ in range(150))
        )
        theirs = [await _uids(proc) for proc in procs]
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        everything = [*mine, *theirs[0], *theirs[1]]
        assert sorted(everything) == list(range(1, 451))
        stored = await store.list_messages("amy@example.com")
        assert [m.uid for m in stored] == list(range(1, 451))
        assert await store.fetch_message("amy@example.com", "INBOX", theirs[1][7]) == b"from 7"


async def test_a_returned_delivery_survives_a_killed_process(sqlite_store: SqliteStore) -> None:
    proc = await _spawn(sqlite_store.path, 3, mode="hang")
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    uids = await _uids(proc)
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), timeout=10) == -signal.SIGKILL
    async with SqliteStore(sqlite_store.path, passwords=fast_passwords()) as store:
        assert sorted(uids) == [1, 2, 3]
        assert await store.fetch_message("amy@example.com", "INBOX", uids[2]) == b"from 2"


async def test_waiting_for_another_writer_does_not_block_the_loop(
    sqlite_store: SqliteStore,
) -> None:
    other = sqlite3.connect(sqlite_store.path, isolation_level=None)
    async with SqliteStore(sqlite_store.path, passwords=fast_passwords()) as store:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            while len(gaps) < 1000:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        start = time.perf_counter()
        uid = await store.deliver("amy@example.com", b"waited")
        waited = time.perf_counter() - start
        ticker.cancel()
    other.close()
    assert uid == 1
    assert waited >= 0.25
    assert len(gaps) >= 20  # the loop kept running while deliver() waited
    assert max(gaps) < 0.2


async def test_a_lock_held_too_long_is_a_store_error(sqlite_store: SqliteStore) -> None:
    other = sqlite3.connect(sqlite_store.path, isolation_level=None)
    store = SqliteStore(sqlite_store.path, busy_timeout=0.2, passwords=fast_passwords())
    async with store:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked"):
            await store.deliver("amy@example.com", b"x")
        other.execute("COMMIT")
        assert await store.deliver("amy@example.com", b"y") == 1
    other.close()


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db", passwords=fast_passwords())
    with pytest.raises(StoreError, match="not open"):
        await store.get_account("amy@example.com")
    await store.create()
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.get_account("amy@example.com")
