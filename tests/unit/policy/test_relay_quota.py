"""RCPT-time quota replies of the relay policy, over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from tests.support.clock import FakeClock
from tests.support.store import sqlite_store

from hayate.config import PolicyConfig
from hayate.core.envelope import Listener, SessionInfo
from hayate.core.reply import SmtpReply
from hayate.policy.relay import RelayPolicy, quota_reply
from hayate.store.base import Account

OUTSIDE = SessionInfo(Listener.MX, peer_ip="192.0.2.7", helo="mx.example.net")


def message(size: int) -> bytes:
    head = b"Subject: filler\r\n\r\n"
    return head + b"x" * (size - len(head))


def code(reply: SmtpReply | None) -> tuple[int, str] | None:
    return None if reply is None else (reply.code, reply.enhanced)


async def test_full_mailbox_is_a_temporary_refusal_and_a_too_big_message_a_permanent_one(
    tmp_path: Path,
) -> None:
    async with sqlite_store(tmp_path / "hayate.db", FakeClock()) as store:
        await store.add_account("alice@example.test", "pw-alice", quota_bytes=1000)
        await store.add_account("bob@example.test", "pw-bob")
        await store.add_alias("team@example.test", ["alice@example.test"])
        policy = RelayPolicy(store, ["example.test"], PolicyConfig())

        assert await policy.check_recipient(OUTSIDE, "x@y.net", "alice@example.test") is None
        await store.deliver("alice@example.test", message(600))
        check = policy.check_recipient
        assert await check(OUTSIDE, "x@y.net", "alice@example.test", declared_size=400) is None
        too_big = await check(OUTSIDE, "x@y.net", "Alice@Example.TEST", declared_size=401)
        assert code(too_big) == (552, "5.2.2")
        assert too_big is not None and "<Alice@Example.TEST>" in too_big.text

        await store.deliver("alice@example.test", message(400))  # exactly at the quota now
        full = await check(OUTSIDE, "x@y.net", "alice@example.test")
        assert code(full) == (452, "4.2.2") and full is not None and "Mailbox full" in full.text
        # Full wins over a declared size: the sender should retry, not bounce.
        assert code(await check(OUTSIDE, "x@y.net", "alice@example.test", 10)) == (452, "4.2.2")

        # Other recipients are unaffected; aliases are left to local delivery.
        assert await check(OUTSIDE, "x@y.net", "bob@example.test", declared_size=10**9) is None
        assert await check(OUTSIDE, "x@y.net", "team@example.test") is None
        assert code(await check(OUTSIDE, "x@y.net", "nobody@example.test")) == (550, "5.1.1")

        await store.set_quota("alice@example.test", 0)
        assert await check(OUTSIDE, "x@y.net", "alice@example.test", 10**9) is None


def test_quota_reply_over_a_lowered_quota() -> None:
    over = Account("a@b.c", 0.0, quota_bytes=100, used_bytes=250)
    assert code(quota_reply(over, "a@b.c", None)) == (452, "4.2.2")
    room = Account("a@b.c", 0.0, quota_bytes=100, used_bytes=99)
    assert quota_reply(room, "a@b.c", 1) is None
    assert code(quota_reply(room, "a@b.c", 2)) == (552, "5.2.2")
    assert quota_reply(Account("a@b.c", 0.0, used_bytes=10**12), "a@b.c", 10**9) is None
