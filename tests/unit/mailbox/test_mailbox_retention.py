"""Retention sweeps on both engines: rules by name and by special use across accounts,
bounded batches, tombstones for sessions, quota given back."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock

from hayate.config import RetentionRule
from hayate.mailbox.retention import DAY, sweep
from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlstore import SqlStore


async def test_sweep_by_special_use_and_name(store: SqlStore, clock: FakeClock) -> None:
    now = clock.now()
    accounts = {}
    for address in ("amy@example.com", "bob@example.com"):
        await store.add_account(address, "pw")
        accounts[address] = StoreMailboxes(store, address)
    amy, bob = accounts["amy@example.com"], accounts["bob@example.com"]
    await bob.rename_folder("Trash", "Deleted Items")  # the special use goes with it
    for days_old in (40, 31, 29, 1):
        when = now - days_old * DAY
        await amy.append("Trash", b"t%d" % days_old, internaldate=when)
        await bob.append("Deleted Items", b"t%d" % days_old, internaldate=when)
        await amy.append("INBOX", b"i%d" % days_old, internaldate=when)
        await amy.append("Junk", b"j%d" % days_old, internaldate=when)
    trash = await amy.folder("Trash")
    used = (await amy.quota()).used
    rules = [RetentionRule(folder="\\trash", days=30), RetentionRule(folder="Junk", days=2)]
    assert await sweep(store, rules, now, batch=1) == 2 + 2 + 3
    assert [m.internaldate for m in await amy.messages(trash, ((1, 10),))] == [
        now - 29 * DAY, now - DAY,
    ]
    deleted_items = await bob.folder("Deleted Items")
    assert len(await bob.uids(deleted_items)) == 2
    assert list(await amy.uids(await amy.folder("Junk"))) == [4]
    assert len(await amy.uids(await amy.folder("INBOX"))) == 4  # no rule: untouched
    assert (await amy.quota()).used == used - 2 * 3 - 3 * 3  # two from Trash, three from Junk
    changes = await amy.changes_since(trash, trash.highestmodseq)
    assert changes.vanished == [1, 2]
    assert await sweep(store, rules, now) == 0


async def test_unknown_special_use_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        await sweep(store, [RetentionRule(folder="\\Bin", days=1)], 0.0)
