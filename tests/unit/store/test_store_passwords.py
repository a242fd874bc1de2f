"""argon2 hashing for accounts: PHC strings, verification, rehash checks, off the event loop."""

from __future__ import annotations

import asyncio
import time

from argon2 import PasswordHasher

from hayate.store.passwords import Passwords


async def test_hash_and_verify() -> None:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    stored = await passwords.hash("hunter2")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert "hunter2" not in stored
    assert await passwords.verify(stored, "hunter2") is True
    assert await passwords.verify(stored, "hunter3") is False
    assert await passwords.verify("not a hash", "hunter2") is False
    assert await passwords.hash("hunter2") != stored  # salted
    passwords.close()


async def test_needs_rehash() -> None:
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    new = Passwords()  # argon2-cffi's defaults
    stored = await old.hash("pw")
    assert old.needs_rehash(stored) is False
    assert new.needs_rehash(stored) is True
    assert new.needs_rehash("garbage") is True
    assert await new.verify(stored, "pw") is True  # old hashes keep working
    old.close()
    new.close()


async def test_hashing_does_not_block_the_event_loop() -> None:
    passwords = Passwords()  # the real cost: ~0.1 s per hash here
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    start = time.perf_counter()
    stored = await passwords.hash("pw")
    assert await passwords.verify(stored, "pw")
    elapsed = time.perf_counter() - start
    done.set()
    await ticker
    passwords.close()
    assert elapsed > 0.02
    assert len(gaps) >= 5
    assert max(gaps) < elapsed / 2
