"""RemoteDeliveryAgent against a private Postfix smtpd: per-recipient replies, STARTTLS,
SIZE and SMTPUTF8 (see ``peers.py`` for how that Postfix is configured)."""

from __future__ import annotations

import ssl

import pytest
from tests.integration.delivery.peers import DictResolver, PostfixPeer

from hayate.config import DeliveryConfig
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.delivery.remote import RemoteDeliveryAgent

pytestmark = pytest.mark.peer


def make_agent(
    dns: DictResolver, tls: str = "may", context: ssl.SSLContext | None = None
) -> RemoteDeliveryAgent:
    config = DeliveryConfig(connect_timeout=5.0, command_timeout=5.0, tls=tls)  # type: ignore[arg-type]
    return RemoteDeliveryAgent(config, "client.hayate.test", dns, tls_context=context)


def job(
    peer: PostfixPeer, *recipients: str, data: bytes | None = None, **extra: object
) -> DeliveryJob:
    nexthop = f"127.0.0.1:{peer.port}"
    body = data if data is not None else b"Subject: to postfix\r\n\r\nHello Postfix.\r\n"
    return DeliveryJob("Q1", "sender@example.org", recipients, body, nexthop, nexthop, **extra)  # type: ignore[arg-type]


def tls12_only() -> ssl.SSLContext:
    """A client context the TLS-1.3-only Postfix cannot agree with."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def test_one_recipient_refused_among_several(postfix: PostfixPeer, dns: DictResolver) -> None:
    agent = make_agent(dns)
    results = await agent.deliver(
        job(postfix, "good@example.net", "bad@example.net", "soft@example.net", "also@example.net")
    )
    await agent.close()
    assert [r.recipient for r in results] == [
        "good@example.net",
        "bad@example.net",
        "soft@example.net",
        "also@example.net",
    ]
    good, bad, soft, also = results
    assert good.outcome is Outcome.DELIVERED and also.outcome is Outcome.DELIVERED
    assert good.reply.code == 250 and "queued as" in good.reply.text
    assert bad.outcome is Outcome.BOUNCED
    assert (bad.reply.code, bad.reply.enhanced) == (554, "5.7.1")
    assert "no such user" in bad.reply.text
    assert soft.outcome is Outcome.DEFERRED
    assert (soft.reply.code, soft.reply.enhanced) == (450, "4.2.1")
    assert "mailbox busy" in soft.reply.text
    assert all(r.remote_reported for r in results)
    assert agent.stats.tls_sessions == 1
    assert postfix.wait_log("TLS connection established from localhost")


async def test_all_recipients_refused_then_connection_reused(
    postfix: PostfixPeer, dns: DictResolver
) -> None:
    agent = make_agent(dns)
    refused = await agent.deliver(job(postfix, "bad@example.net", "soft@example.net"))
    [ok] = await agent.deliver(job(postfix, "good@example.net"))
    await agent.close()
    assert [r.outcome for r in refused] == [Outcome.BOUNCED, Outcome.DEFERRED]
    # The open transaction was reset before the next MAIL: Postfix would refuse a nested MAIL.
    assert ok.outcome is Outcome.DELIVERED, ok.reply
    assert agent.stats.connections_opened == 1
    assert postfix.wait_log("rset=1")


async def test_tls_handshake_failure_retries_in_plain_text(
    postfix: PostfixPeer, dns: DictResolver
) -> None:
    agent = make_agent(dns, tls="may", context=tls12_only())
    [r] = await agent.deliver(job(postfix, "good@example.net"))
    await agent.close()
    assert r.outcome is Outcome.DELIVERED, r.reply
    assert agent.stats.tls_fallbacks == 1
    assert agent.stats.tls_sessions == 0
    assert agent.stats.connections_opened == 1


async def test_tls_encrypt_with_failing_handshake_defers(
    postfix: PostfixPeer, dns: DictResolver
) -> None:
    agent = make_agent(dns, tls="encrypt", context=tls12_only())
    [r] = await agent.deliver(job(postfix, "good@example.net"))
    await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.enhanced == "4.7.5"
    assert "TLS handshake" in r.reply.text
    assert agent.stats.connections_opened == 0


async def test_tls_encrypt_delivers_over_tls(postfix: PostfixPeer, dns: DictResolver) -> None:
    agent = make_agent(dns, tls="encrypt")
    for _ in range(2):
        [r] = await agent.deliver(job(postfix, "good@example.net"))
        assert r.outcome is Outcome.DELIVERED, r.reply
    await agent.close()
    assert agent.stats.tls_sessions == 1
    assert agent.stats.connections_reused == 1


async def test_tls_none_never_starts_tls(postfix: PostfixPeer, dns: DictResolver) -> None:
    agent = make_agent(dns, tls="none")
    [r] = await agent.deliver(job(postfix, "good@example.net"))
    await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert agent.stats.tls_sessions == 0


async def test_smtputf8_message_to_server_that_offers_it(
    postfix: PostfixPeer, dns: DictResolver
) -> None:
    agent = make_agent(dns)
    data = "Subject: grüße\r\n\r\nUnicode everywhere.\r\n".encode()
    [r] = await agent.deliver(job(postfix, "josé@example.net", data=data, smtputf8=True))
    await agent.close()
    assert r.outcome is Outcome.DELIVERED, r.reply


async def test_message_over_the_server_size_limit_bounces_without_sending(
    postfix: PostfixPeer, dns: DictResolver
) -> None:
    agent = make_agent(dns)
    big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 1500  # 120 kB > 100 kB
    [r] = await agent.deliver(job(postfix, "good@example.net", data=big))
    [small] = await agent.deliver(job(postfix, "good@example.net"))
    await agent.close()
    assert r.outcome is Outcome.BOUNCED
    assert (r.reply.code, r.reply.enhanced) == (552, "5.3.4")
    assert "100000" in r.reply.text
    assert not r.remote_reported
    assert small.outcome is Outcome.DELIVERED
    assert agent.stats.connections_opened == 1
