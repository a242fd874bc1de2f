"""BounceProcessor with records built by hand: matching, events, suppression, robustness."""

from __future__ import annotations

import pytest
from tests.support.clock import FakeClock

from hayate.bounces.processor import BounceProcessor
from hayate.bounces.records import BounceKind, BounceRecord
from hayate.bounces.suppression import SuppressionService
from hayate.bounces.verp import VerpCodec
from hayate.config import EventsConfig, SuppressionConfig
from hayate.core.events import DeliveryEvent, EventKind
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.events.recorder import EventRecorder
from hayate.store.sqlite import SqliteStore

QID = "18A3F2C5D9E01A7B0"
VERP = VerpCodec("bounce.example.com", b"k" * 32)


class Harness:
    def __init__(self, store: SqliteStore, clock: FakeClock) -> None:
        self.store = store
        self.records: list[BounceRecord] = []
        self.recorder = EventRecorder(store, EventsConfig(), clock)
        self.suppression = SuppressionService(store, SuppressionConfig(soft_bounce_limit=2),
                                              clock)
        self.processor = BounceProcessor(self._parse, VERP, self.suppression, self.recorder,
                                         clock)

    def _parse(self, data: bytes) -> list[BounceRecord]:
        if data == b"boom":
            raise RuntimeError("parser bug")
        return list(self.records)

    async def run(self, *rcpts: str, data: bytes = b"report") -> list[Outcome]:
        job = DeliveryJob(queue_id="IN1", sender="", recipients=rcpts, data=data,
                          destination="bounce")
        results = await self.processor.deliver(job)
        assert [r.recipient for r in results] == list(rcpts)
        await self.recorder.flush()
        return [r.outcome for r in results]

    async def events(self) -> list[DeliveryEvent]:
        return [e for e in await self.store.query_events() if e.relay == "bounce"]


@pytest.fixture
async def h(store: SqliteStore, clock: FakeClock) -> Harness:
    harness = Harness(store, clock)
    # What the scheduler records when it sends the original message.
    await store.insert_events([DeliveryEvent(time=clock.now() - 60, kind=EventKind.DELIVERED,
                                             recipient="bob@example.net",
                                             sender="news@Example.com", queue_id=QID)])
    return harness


def verp(rcpt: str = "bob@example.net", qid: str = QID) -> str:
    address = VERP.for_recipient(qid, "news@example.com", rcpt)
    assert address is not None
    return address


async def test_hard_bounce_to_a_verp_address(h: Harness) -> None:
    # The report names a forwarded address; the VERP recipient wins.
    h.records = [BounceRecord("forwarded@elsewhere.example", "hard", "user-unknown", "5.1.1",
                              "550 5.1.1 unknown")]
    assert await h.run(verp()) == [Outcome.DELIVERED]
    [event] = await h.events()
    assert (event.kind, event.recipient, event.queue_id, event.sender) == (
        EventKind.ASYNC_BOUNCE, "bob@example.net", QID, "news@Example.com")
    assert (event.bounce_kind, event.reason, event.status, event.reply) == (
        "hard", "user-unknown", "5.1.1", "550 5.1.1 unknown")
    [entry] = await h.store.list_suppressions()
    assert (entry.domain, entry.address, entry.source) == (
        "example.com", "bob@example.net", "hard-bounce")


async def test_complaint_matched_through_the_returned_return_path(h: Harness) -> None:
    h.records = [BounceRecord("bob@example.net", "complaint", "abuse",
                              original_sender=verp())]
    await h.run("fbl@bounce.example.com")
    [event] = await h.events()
    assert event.kind == EventKind.COMPLAINED and event.queue_id == QID
    assert [e.source for e in await h.store.list_suppressions()] == ["complaint"]


async def test_soft_bounces_and_unreadable_reports_count(h: Harness) -> None:
    h.records = [BounceRecord("bob@example.net", "soft", "mailbox-full", "4.2.2")]
    await h.run(verp())
    assert await h.store.list_suppressions() == []
    h.records = [BounceRecord("", "unknown", "undefined")]  # parser found nothing
    await h.run(verp())
    kinds = [(e.bounce_kind, e.reason) for e in await h.events()]
    assert kinds == [("soft", "mailbox-full"), ("soft", "unknown")]
    [entry] = await h.store.list_suppressions()
    assert entry.source == "soft-bounces"


async def test_auto_replies_and_delivered_notices_are_not_bounces(h: Harness) -> None:
    for kind in ("auto-reply", "delivered"):
        h.records = [BounceRecord("bob@example.net", kind, kind)]
        await h.run(verp())
    assert await h.events() == [] and await h.store.list_suppressions() == []


async def test_delay_warnings_never_count_as_bounces(h: Harness) -> None:
    # more warnings than soft_bounce_limit (2), with a genuine token: no event, no entry
    h.records = [BounceRecord("bob@example.net", "soft", "delayed", "4.2.2",
                              "452 4.2.2 Mailbox full")]
    for _ in range(3):
        assert await h.run(verp()) == [Outcome.DELIVERED]
    await h.run("postmaster@bounce.example.com")  # and without a token
    assert await h.events() == [] and await h.store.list_suppressions() == []
    # a real soft bounce afterwards is the first to count
    h.records = [BounceRecord("bob@example.net", "soft", "mailbox-full", "5.2.2")]
    await h.run(verp())
    assert [(e.bounce_kind, e.reason) for e in await h.events()] == [("soft", "mailbox-full")]
    assert await h.store.list_suppressions() == []


async def test_suppression_rules_ignore_a_delay_whatever_its_kind(h: Harness) -> None:
    kinds: tuple[BounceKind, ...] = ("soft", "hard")
    for kind in kinds:
        record = BounceRecord("bob@example.net", kind, "delayed", "4.4.1")
        decision = await h.suppression.apply("example.com", record)
        assert not decision.suppressed and decision.source == ""
    assert await h.store.list_suppressions() == []


async def test_without_a_token_nothing_is_suppressed(h: Harness) -> None:
    h.records = [BounceRecord("victim@example.net", "hard", "user-unknown", "5.1.1")]
    forged = verp().replace("b-", "b-a", 1)
    await h.run(forged, "postmaster@bounce.example.com")
    [event] = await h.events()
    assert event.recipient == "victim@example.net" and event.queue_id == ""
    assert await h.store.list_suppressions() == []


async def test_unknown_sender_suppresses_for_every_domain(h: Harness) -> None:
    h.records = [BounceRecord("x@example.net", "hard", "user-unknown", "5.1.1")]
    await h.run(verp("carol@example.net", qid="0000000000000000A"))
    [entry] = await h.store.list_suppressions()
    assert (entry.domain, entry.address) == ("*", "carol@example.net")


async def test_long_recipient_digest_is_resolved_from_the_events(
    h: Harness, clock: FakeClock
) -> None:
    long_rcpt = "very.long.firstname.lastname.department@subdivision.example.co.jp"
    await h.store.insert_events([DeliveryEvent(time=clock.now(), kind=EventKind.DELIVERED,
                                               recipient=long_rcpt, sender="a@example.com",
                                               queue_id=QID)])
    h.records = [BounceRecord("", "unknown", "undefined")]
    await h.run(verp(long_rcpt))
    [event] = await h.events()
    assert event.recipient == long_rcpt


async def test_broken_parser_or_data_never_holds_the_message(h: Harness) -> None:
    assert await h.run(verp(), data=b"boom") == [Outcome.DELIVERED]
    await h.store.close()  # even a store failure is logged, not raised
    h.records = [BounceRecord("bob@example.net", "hard", "user-unknown", "5.1.1")]
    job = DeliveryJob(queue_id="IN2", sender="", recipients=(verp(),), data=b"x",
                      destination="bounce")
    [result] = await h.processor.deliver(job)
    assert result.outcome == Outcome.DELIVERED
