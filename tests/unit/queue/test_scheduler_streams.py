"""Message streams from ingest to the spool to the scheduler, and the spool's migration.

Ingest takes the stream from the configured header (and removes it), or the sending
domain's stream, or the default; the spool keeps it (older spool files get the column in
place); the scheduler serves it in that stream.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.queue import FakeClock
from tests.unit.queue.test_scheduler_shaping import Agent, build, until

from hayate.config import StreamsConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo
from hayate.ingest.ingest import Ingest, stream_of, take_header
from hayate.ingest.routing import Router
from hayate.store.spool import Spool, adopt_shard

OLD_SCHEMA = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY, sender TEXT NOT NULL, arrival REAL NOT NULL, size INTEGER NOT NULL,
    smtputf8 INTEGER NOT NULL DEFAULT 0, body_8bit INTEGER NOT NULL DEFAULT 0, envid TEXT,
    ret TEXT, origin TEXT NOT NULL DEFAULT '', held INTEGER NOT NULL DEFAULT 0,
    hold_reason TEXT, data BLOB NOT NULL
);
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL, address TEXT NOT NULL, orig TEXT,
    route TEXT NOT NULL, destination TEXT NOT NULL, nexthop TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL,
    active INTEGER NOT NULL DEFAULT 0, last_reply TEXT
);
INSERT INTO messages (id, sender, arrival, size, data)
    VALUES ('OLD1', 's@hayate.test', 1000.0, 20, X'5375626A6563743A20780D0A0D0A68690D0A');
INSERT INTO recipients (msg_id, address, route, destination, nexthop, next_attempt)
    VALUES ('OLD1', 'r@example.net', 'remote', 'sink.test:25', 'sink.test:25', 0);
"""


def old_shard(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.commit()
    conn.close()


def test_take_header_removes_every_copy_and_folded_lines() -> None:
    data = (b"From: a@x\r\nX-Hayate-Stream: bulk\r\n\tmore\r\nSubject: s\r\n"
            b"x-hayate-stream: other\r\n\r\nX-Hayate-Stream: in the body\r\n")
    out, value = take_header(data, "X-Hayate-Stream")
    assert out == b"From: a@x\r\nSubject: s\r\n\r\nX-Hayate-Stream: in the body\r\n"
    assert value == "bulk more"
    assert take_header(b"From: a\r\n\r\nb", "X-Hayate-Stream") == (b"From: a\r\n\r\nb", None)


def test_stream_of_header_domain_and_default() -> None:
    cfg = StreamsConfig(domains={"news.example.com": "bulk", "example.org": "promo"})
    assert stream_of(cfg, "a@example.com", "Bulk") == "bulk"
    assert stream_of(cfg, "a@news.example.com", None) == "bulk"
    assert stream_of(cfg, "a@x.example.org", None) == "promo"  # nearest parent listed
    assert stream_of(cfg, "a@example.com", None) == "transactional"
    assert stream_of(cfg, "a@example.com", "no spaces please") == "transactional"
    assert stream_of(cfg, "", None) == "transactional"


async def test_ingest_stores_the_stream_and_drops_the_header(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()

    async def no_alias(addr: str) -> list[str]:
        return [addr]

    ingest = Ingest(hostname="mx.test", spool=spool, router=Router([], []),
                    expand_alias=no_alias,
                    streams=StreamsConfig(domains={"news.hayate.test": "bulk"}))
    session = SessionInfo(Listener.SUBMISSION, "192.0.2.1", helo="c")
    qid = await ingest.accept(session, Envelope("a@hayate.test", ("r@example.net",)),
                              b"X-Hayate-Stream: promo\r\nSubject: hi\r\n\r\nbody\r\n")
    qid2 = await ingest.accept(session, Envelope("a@news.hayate.test", ("r@example.net",)),
                               b"Subject: hi\r\n\r\nbody\r\n")
    first = spool.message(qid.text.rsplit(" ", 1)[1])
    second = spool.message(qid2.text.rsplit(" ", 1)[1])
    assert first is not None and first.stream == "promo"
    assert second is not None and second.stream == "bulk"
    data = spool.message_data(first.id) or b""
    assert b"x-hayate-stream" not in data.lower() and b"Subject: hi" in data
    await spool.committer.stop()
    spool.close()


async def test_old_spool_gets_the_column_and_is_delivered(tmp_path: Path) -> None:
    old_shard(tmp_path / "shard-0.db")
    clock = FakeClock()
    agent = Agent()
    spool, sched, _ = build(tmp_path, agent, clock)
    info = spool.message("OLD1")
    assert info is not None and info.stream == ""
    await sched.start()
    await until(lambda: spool.counts() == (0, 0))
    assert [j.recipients for j in agent.jobs] == [("r@example.net",)]
    await sched.stop()


def test_adopting_an_old_shard(tmp_path: Path) -> None:
    old_shard(tmp_path / "shard-1.db")
    spool = Spool(tmp_path / "shard-0.db")
    assert adopt_shard(spool, tmp_path / "shard-1.db") == 1
    info = spool.message("OLD1")
    assert info is not None and info.stream == "" and info.sender == "s@hayate.test"
    assert spool.message_data("OLD1") == b"Subject: x\r\n\r\nhi\r\n"
    assert [r.address for r in spool.recipients_of("OLD1")] == ["r@example.net"]
    spool.close()
