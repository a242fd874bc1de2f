"""Relay control decisions, including the bounce domain that takes any local part."""

from __future__ import annotations

from pathlib import Path

from hayate.config import PolicyConfig
from hayate.core.envelope import Listener, SessionInfo
from hayate.policy.relay import RelayPolicy
from hayate.store import open_store

OUTSIDE = SessionInfo(Listener.MX, peer_ip="192.0.2.7", helo="mx.example.net")


async def test_bounce_domain_accepts_any_local_part_but_relaying_is_still_refused(
    tmp_path: Path,
) -> None:
    store = open_store("sqlite", tmp_path / "hayate.db")
    await store.create()
    await store.migrate()
    try:
        await store.add_account("alice@example.test", "pw-alice-123")
        policy = RelayPolicy(
            store, ["example.test"], PolicyConfig(), bounce_domain="Bounces.Example.Test."
        )
        assert await policy.check_recipient(OUTSIDE, "", "b-abc123@bounces.example.test") is None
        assert await policy.check_recipient(OUTSIDE, "", "fbl@BOUNCES.example.test") is None
        assert await policy.check_recipient(OUTSIDE, "x@y.net", "alice@example.test") is None
        unknown = await policy.check_recipient(OUTSIDE, "x@y.net", "bob@example.test")
        assert unknown is not None and (unknown.code, unknown.enhanced) == (550, "5.1.1")
        relay = await policy.check_recipient(OUTSIDE, "x@y.net", "b-1@bounces.example.net")
        assert relay is not None and (relay.code, relay.enhanced) == (554, "5.7.1")
    finally:
        await store.close()


async def test_without_a_bounce_domain_its_addresses_are_relaying(tmp_path: Path) -> None:
    store = open_store("sqlite", tmp_path / "hayate.db")
    await store.create()
    await store.migrate()
    try:
        policy = RelayPolicy(store, ["example.test"], PolicyConfig())
        reply = await policy.check_recipient(OUTSIDE, "", "b-abc@bounces.example.test")
        assert reply is not None and reply.code == 554
    finally:
        await store.close()
