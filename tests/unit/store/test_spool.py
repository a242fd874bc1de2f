"""The spool: durable writes with group commit, claiming, deferral, admin actions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hayate.store.spool import (
    Spool,
    SpoolMessage,
    SpoolRecipient,
    adopt_shard,
    open_all,
    spool_path,
)


def message(spool: Spool, n_rcpt: int = 2, now: float = 1000.0) -> SpoolMessage:
    rcpts = tuple(
        SpoolRecipient(f"r{i}@example.net", "remote", "example.net") for i in range(n_rcpt)
    )
    return SpoolMessage(spool.new_id(), "s@hayate.test", now, b"Subject: x\r\n\r\nhi\r\n", rcpts)


async def test_group_commit_shares_transactions(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()
    msgs = [message(spool) for _ in range(50)]
    results = await asyncio.gather(*(spool.store(m, active=False) for m in msgs))
    assert all(len(ids) == 2 for ids in results)
    assert spool.committer.operations == 50
    assert spool.committer.commits < 50  # many sessions shared one fsync
    assert spool.counts() == (50, 100)
    await spool.committer.stop()
    spool.close()
    # Durable: a fresh connection sees everything.
    again = Spool(tmp_path / "shard-0.db")
    assert again.counts() == (50, 100)
    again.close()


async def test_claim_defer_finish(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()
    msg = message(spool, 2, now=1000.0)
    ids = await spool.store(msg, active=False)
    claimed = spool.claim_due(now=1000.0, limit=10)
    assert [r.id for r in claimed] == ids
    await asyncio.sleep(0.01)
    assert spool.claim_due(now=1000.0, limit=10) == []  # already active
    spool.defer([ids[0]], next_attempt=2000.0, reply="451 4.4.1 try later")
    spool.finish([ids[1]], msg.id)
    await asyncio.sleep(0.01)
    assert spool.claim_due(now=1500.0, limit=10) == []
    (row,) = spool.claim_due(now=2000.0, limit=10)
    assert row.attempts == 1 and row.last_reply == "451 4.4.1 try later"
    assert spool.counts() == (1, 1)
    spool.finish([ids[0]], msg.id)
    await asyncio.sleep(0.01)
    assert spool.counts() == (0, 0)
    await spool.committer.stop()
    spool.close()


async def test_held_messages_are_not_claimed_and_reset_active(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "shard-0.db")
    msg = message(spool, 1)
    await spool.store(msg, active=True)
    assert spool.claim_due(now=5000.0, limit=10) == []  # active rows are not claimable
    assert spool.reset_active() == 1  # what a restart after a crash does
    spool.set_held(msg.id, True, "by operator")
    assert spool.claim_due(now=5000.0, limit=10) == []
    spool.set_held(msg.id, False)
    assert len(spool.claim_due(now=5000.0, limit=10)) == 1
    assert spool.delete(msg.id) == 1
    assert spool.counts() == (0, 0)
    spool.close()


async def test_orphan_shard_is_adopted(tmp_path: Path) -> None:
    a = Spool(spool_path(tmp_path, 0), 0)
    b = Spool(spool_path(tmp_path, 3), 3)
    await a.store(message(a, 1), active=False)
    await b.store(message(b, 2), active=True)
    b.close()
    assert adopt_shard(a, spool_path(tmp_path, 3)) == 1
    assert a.counts() == (2, 3)
    assert [s.shard for s in open_all(tmp_path)] == [0]
    assert len(a.claim_due(now=10**10, limit=10)) == 3
    a.close()
