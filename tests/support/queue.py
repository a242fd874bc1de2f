"""Helpers for the scheduler's tests: a fake clock, a bounce collector, and a way to put a
message into the spool and the scheduler's window the way ingest does."""

from __future__ import annotations

from tests.support.clock import FakeClock

from hayate.queue.scheduler import Scheduler
from hayate.store.spool import Spool, SpoolMessage, SpoolRecipient

BODY = b"Subject: t\r\nFrom: s@hayate.test\r\n\r\nx\r\n"


class Bounces:
    """The scheduler's ``send_bounce``: keeps every DSN it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def __call__(self, rcpt: str, dsn: bytes) -> str:
        self.sent.append((rcpt, dsn))
        return f"DSN{len(self.sent)}"


async def put(spool: Spool, sched: Scheduler, clock: FakeClock, rcpts: list[str],
              sender: str = "s@hayate.test", stream: str = "",
              nexthop: str | None = None) -> str:
    """Spool a message to remote ``rcpts`` (``nexthop`` for all of them, if given) and hand
    it to the scheduler's window when there is room, as ingest does; returns its id."""
    msg = SpoolMessage(
        spool.new_id(), sender, clock.now(), BODY,
        tuple(SpoolRecipient(r, "remote", r.split("@")[1], nexthop) for r in rcpts),
        stream=stream,
    )
    active = sched.reserve(len(rcpts))
    ids = await spool.store(msg, active)
    if active:
        sched.queued(msg, ids)
    return msg.id
