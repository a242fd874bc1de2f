"""Password hashing for accounts: argon2id through argon2-cffi, off the event loop.

One hash costs about 0.1 s of CPU with argon2-cffi's defaults (64 MiB, t=3, p=4), so
:class:`Passwords` runs hashing and verifying in its own small thread pool (as many threads
as cores): a burst of logins never blocks the event loop and never fills the loop's default
executor. The stored value is the full PHC string (``$argon2id$v=19$m=...``), never the
password. ``verify_dummy`` burns the same time for a login to a missing account, and
``needs_rehash`` tells the store when a hash made with older parameters should be replaced
after a successful login.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords with one argon2 parameter set."""

    def __init__(self, hasher: PasswordHasher | None = None, threads: int | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._executor: ThreadPoolExecutor | None = None
        self._dummy: str | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="argon2")
        return self._executor

    async def hash(self, password: str) -> str:
        """The PHC string to store for ``password``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False on a mismatch or an unreadable hash."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self._verify, stored_hash, password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_dummy(self, password: str) -> None:
        """Spend the time a real verification takes (for a login to a missing account)."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))
        await self.verify(self._dummy, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than ours."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
