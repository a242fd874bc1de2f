"""The bounce processor on real reports (../shared/testdata/bounces) with the real parser,
VERP codec, suppression list and event recorder over a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.clock import FakeClock
from tests.support.corpus import bounce_corpus
from tests.support.store import sqlite_store
from tests.unit.store.store_helpers import raw_rows

from hayate.bounces.processor import BounceProcessor
from hayate.bounces.suppression import SuppressionService
from hayate.bounces.verp import VerpCodec
from hayate.config import EventsConfig, SuppressionConfig
from hayate.core.events import DeliveryEvent, EventKind
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.events.recorder import EventRecorder
from hayate.store.sqlite import SqliteStore

CORPUS = bounce_corpus()
parse = pytest.importorskip("hayate.bounces.parse").parse_message

pytestmark = pytest.mark.skipif(not (CORPUS / "labels.json").exists(),
                                reason=f"bounce corpus not found at {CORPUS}")


class World:
    def __init__(self, store: SqliteStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.verp = VerpCodec("bounce.example.com", b"corpus-key-0123456789")
        self.recorder = EventRecorder(store, EventsConfig(), clock)
        self.suppression = SuppressionService(store, SuppressionConfig(), clock)
        self.processor = BounceProcessor(parse, self.verp, self.suppression, self.recorder,
                                         clock)
        self.serial = 0

    async def feed(self, name: str, recipient: str) -> tuple[str, list[DeliveryEvent]]:
        """Send the original (an event), then let ``name`` come back to its VERP address."""
        self.serial += 1
        qid = f"{self.serial:017X}"
        await self.store.insert_events([DeliveryEvent(self.clock.now(), EventKind.DELIVERED,
                                                      recipient, "news@example.com", qid)])
        address = self.verp.for_recipient(qid, "news@example.com", recipient)
        assert address is not None
        job = DeliveryJob(queue_id="IN", sender="", recipients=(address,),
                          data=(CORPUS / name).read_bytes(), destination="bounce")
        [result] = await self.processor.deliver(job)
        assert result.outcome == Outcome.DELIVERED
        await self.recorder.flush()
        events = [e for e in await self.store.query_events(queue_id=qid) if e.relay == "bounce"]
        return qid, events


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    async with sqlite_store(tmp_path / "hayate.db", clock) as store:
        yield World(store, clock)


def label(name: str) -> dict[str, object]:
    labels = json.loads((CORPUS / "labels.json").read_text())
    first: dict[str, object] = labels[name][0]
    return first


@pytest.mark.parametrize("name", ["lhost-courier-01.eml", "lhost-bigfoot-02.eml",
                                  "lhost-amazonworkmail-01.eml"])
async def test_hard_bounces_suppress(world: World, name: str) -> None:
    rcpt = str(label(name)["recipient"])
    _, [event] = await world.feed(name, rcpt)
    assert (event.kind, event.bounce_kind, event.recipient) == (
        EventKind.ASYNC_BOUNCE, "hard", rcpt)
    assert await world.suppression.suppressed("example.com", [rcpt]) == {rcpt}
    [entry] = await world.store.list_suppressions()
    assert (entry.domain, entry.source) == ("example.com", "hard-bounce")


async def test_mailbox_full_counts_as_a_soft_bounce(world: World) -> None:
    name = "lhost-amazonworkmail-04.eml"
    rcpt = str(label(name)["recipient"])
    for _ in range(2):
        _, [event] = await world.feed(name, rcpt)
        assert event.bounce_kind == "soft"
    assert await world.store.list_suppressions() == []
    await world.feed(name, rcpt)  # the third within the window (limit 3)
    [entry] = await world.store.list_suppressions()
    assert entry.source == "soft-bounces"


@pytest.mark.parametrize("name", ["lhost-amavis-03.eml", "lhost-amazonses-15.eml"])
async def test_blocks_about_us_are_recorded_but_never_suppress(world: World, name: str) -> None:
    rcpt = str(label(name)["recipient"])
    for _ in range(4):
        _, [event] = await world.feed(name, rcpt)
        assert event.kind == EventKind.ASYNC_BOUNCE
    assert await world.store.list_suppressions() == []
    assert await raw_rows(world.store, "SELECT count(*) FROM soft_bounces") == [(0,)]


async def test_feedback_report_is_a_complaint(world: World) -> None:
    rcpt = str(label("arf-14.eml")["recipient"])
    _, [event] = await world.feed("arf-14.eml", rcpt)
    assert event.kind == EventKind.COMPLAINED
    [entry] = await world.store.list_suppressions()
    assert entry.source == "complaint"


@pytest.mark.parametrize("name", ["rfc3834-01.eml", "lhost-amazonses-12.eml"])
async def test_auto_replies_and_delivery_notices_change_nothing(world: World, name: str) -> None:
    _, events = await world.feed(name, str(label(name)["recipient"]))
    assert events == [] and await world.store.list_suppressions() == []


async def test_every_corpus_message_is_consumed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = json.loads((CORPUS / "labels.json").read_text())
    agree = total = 0
    for path in sorted(CORPUS.glob("*.eml")):
        wanted = labels.get(path.name) or [{}]
        rcpt = str(wanted[0].get("recipient") or "someone@example.net")
        await world.feed(path.name, rcpt)  # never raises, always DELIVERED
        if wanted[0].get("softbounce") == 0:  # labelled hard: it must be suppressed
            total += 1
            found = await world.suppression.suppressed("example.com", [rcpt.lower()])
            agree += bool(found)
    with capsys.disabled():
        print(f"\nhard-labelled corpus reports that suppressed their VERP recipient: "
              f"{agree}/{total}")
    assert total > 50
