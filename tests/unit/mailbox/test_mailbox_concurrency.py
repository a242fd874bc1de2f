"""Many sessions on two store connections (two workers, or two nodes on PostgreSQL) changing
the same folders at once: no deadlock, no lost update, distinct UIDs, modseqs that only go
up, a quota that still adds up, and message bodies that match their references exactly."""

from __future__ import annotations

import asyncio
import random

from tests.unit.mailbox.conftest import AMY
from tests.unit.store.store_helpers import raw_rows, sibling

from hayate.mailbox.model import Folder
from hayate.mailbox.service import StoreMailboxes
from hayate.store.sqlstore import SqlStore


async def test_mixed_writers_on_two_connections(store: SqlStore, amy: StoreMailboxes) -> None:
    for i in range(40):
        await amy.append("INBOX", b"seed %d" % i)
        await amy.append("Archive", b"seed %d" % i)
    names = ("INBOX", "Archive")
    async with sibling(store) as other_store:
        sessions = [StoreMailboxes(s, AMY) for s in (store, other_store) * 3]
        folders = {n: await amy.folder(n) for n in names}

        async def worker(seed: int, session: StoreMailboxes) -> None:
            rng = random.Random(seed)
            for _ in range(25):
                name = rng.choice(names)
                folder: Folder = folders[name]
                other = names[1 - names.index(name)]
                low = rng.randint(1, 120)
                uids = ((low, low + rng.randint(0, 10)),)
                action = rng.randrange(6)
                if action == 0:
                    await session.append(name, b"new %d" % rng.randrange(10**6))
                elif action == 1:
                    await session.store_flags(folder, uids, "add", ["\\Seen", "$k"])
                elif action == 2:
                    await session.store_flags(folder, uids, "add", ["\\Deleted"])
                    await session.expunge(folder, uids)
                elif action == 3:
                    await session.copy(folder, uids, other)
                elif action == 4:
                    await session.move(folder, uids, other)
                else:
                    await session.changes_since(folder, rng.randint(0, 50))

        await asyncio.gather(*(worker(seed, s) for seed, s in enumerate(sessions)))

    for name in names:
        folder = await amy.folder(name)
        uids = list(await amy.uids(folder))
        assert uids == sorted(set(uids))
        assert all(uid < folder.uidnext for uid in uids)
        vanished = (await amy.changes_since(folder, 0)).vanished
        assert not set(vanished) & set(uids)  # an expunged UID never comes back
        infos = await amy.messages(folder, ((1, folder.uidnext),))
        assert all(m.modseq <= folder.highestmodseq for m in infos)
    [(buried,)] = await raw_rows(store, "SELECT count(*) FROM expunged")
    assert buried > 0  # the expunges and moves happened
    [(total,)] = await raw_rows(store, "SELECT coalesce(sum(size), 0) FROM messages")
    assert (await amy.quota()).used == total
    # Every body still referenced is there, and no other one is left behind.
    referenced = await raw_rows(store, "SELECT DISTINCT body_id FROM messages ORDER BY 1")
    assert await raw_rows(store, "SELECT id FROM message_bodies ORDER BY 1") == referenced
