"""Local delivery results as the queue sees them: delivered, unknown user, full mailbox."""

from __future__ import annotations

from pathlib import Path

from tests.support.clock import FakeClock
from tests.support.store import sqlite_store

from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.delivery.local import LocalDeliveryAgent


def job(*recipients: str, size: int = 100) -> DeliveryJob:
    data = b"Subject: t\r\n\r\n" + b"x" * size + b"\r\n"
    return DeliveryJob("Q1", "a@example.net", recipients, data, "hayate.test")


async def test_full_mailbox_defers_and_oversized_message_bounces(tmp_path: Path) -> None:
    async with sqlite_store(tmp_path / "s.db", FakeClock()) as store:
        await store.add_account("full@hayate.test", "pw-full-1", quota_bytes=1000)
        await store.add_account("roomy@hayate.test", "pw-roomy-1")
        agent = LocalDeliveryAgent(store)

        first = await agent.deliver(job("full@hayate.test", size=800))
        assert [r.outcome for r in first] == [Outcome.DELIVERED]

        # Room for 800 more bytes is not there now, but would be after a clean-up: retry.
        second = await agent.deliver(job("full@hayate.test", "roomy@hayate.test", size=800))
        assert [r.outcome for r in second] == [Outcome.DEFERRED, Outcome.DELIVERED]
        assert (second[0].reply.code, second[0].reply.enhanced) == (452, "4.2.2")

        # Larger than the whole quota: it can never fit, so it bounces at once.
        third = await agent.deliver(job("full@hayate.test", size=5000))
        assert [r.outcome for r in third] == [Outcome.BOUNCED]
        assert (third[0].reply.code, third[0].reply.enhanced) == (552, "5.2.2")

        unknown = await agent.deliver(job("nobody@hayate.test"))
        assert (unknown[0].outcome, unknown[0].reply.enhanced) == (Outcome.BOUNCED, "5.1.1")
        assert await store.count_messages("full@hayate.test") == 1
