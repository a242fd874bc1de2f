"""MX routing of RemoteDeliveryAgent: our DNS seam backed by dicts, real smtp-sinks.

MX hosts all use DeliveryConfig.port, so two sinks share one port on two loopback
addresses: 127.0.0.2 (the first MX) and 127.0.0.1 (the second); an address where no sink
listens refuses connections.
"""

from __future__ import annotations

import pytest
from tests.integration.delivery.peers import DictResolver
from tests.support.sink import smtp_sink

from hayate.config import DeliveryConfig
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob, DnsError, MxAnswer, MxHost
from hayate.delivery.remote import RemoteDeliveryAgent

pytestmark = pytest.mark.peer

DOMAIN = "example.net"


def make_agent(dns: DictResolver, port: int, **settings: object) -> RemoteDeliveryAgent:
    values = {"connect_timeout": 3.0, "command_timeout": 3.0, "tls": "none", "port": port}
    config = DeliveryConfig.model_validate({**values, **settings})
    return RemoteDeliveryAgent(config, "client.hayate.test", dns)


def mail(*recipients: str, qid: str = "Q1", domain: str = DOMAIN) -> DeliveryJob:
    rcpts = recipients or (f"rcpt@{domain}",)
    return DeliveryJob(qid, "sender@example.org", rcpts, b"Subject: mx\r\n\r\nhi\r\n", domain)


async def test_first_mx_used_and_addresses_looked_up_lazily(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.1"]
    dns.addresses["mx2.example.net"] = ["127.0.0.2"]
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
        assert len(sink.wait_messages(1)) == 1
    assert r.outcome is Outcome.DELIVERED
    assert r.relay == f"mx1.example.net[127.0.0.1]:{sink.port}"
    assert dns.mx_lookups == [DOMAIN]
    assert dns.address_lookups == ["mx1.example.net"]


async def test_unreachable_first_mx_falls_back_to_second(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.2"]  # nothing listens there
    dns.addresses["mx2.example.net"] = ["127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert r.relay == f"mx2.example.net[127.0.0.1]:{sink.port}"
    assert dns.address_lookups == ["mx1.example.net", "mx2.example.net"]
    assert agent.stats.connect_failures == 1


async def test_addresses_of_one_host_tried_in_order(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx.example.net")
    dns.addresses["mx.example.net"] = ["127.0.0.2", "127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert r.relay == f"mx.example.net[127.0.0.1]:{sink.port}"


async def test_mx_with_failing_address_lookup_is_skipped(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = DnsError("SERVFAIL", temporary=True)
    dns.addresses["mx2.example.net"] = ["127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert r.relay.startswith("mx2.example.net[")


async def test_no_mx_uses_the_domain_itself(dns: DictResolver) -> None:
    dns.mx[DOMAIN] = MxAnswer(DOMAIN, (MxHost(0, DOMAIN),), implicit=True)
    dns.addresses[DOMAIN] = ["127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert r.relay == f"{DOMAIN}[127.0.0.1]:{sink.port}"


async def test_null_mx_bounces_every_recipient(dns: DictResolver) -> None:
    dns.mx[DOMAIN] = MxAnswer(DOMAIN, (), null_mx=True)
    agent = make_agent(dns, 25)
    results = await agent.deliver(mail("a@example.net", "b@example.net"))
    await agent.close()
    assert [r.outcome for r in results] == [Outcome.BOUNCED, Outcome.BOUNCED]
    assert results[0].reply.code == 556 and results[0].reply.enhanced == "5.1.10"
    assert results[0].reply.text == "Recipient address has null MX"
    assert dns.address_lookups == []


async def test_nxdomain_bounces(dns: DictResolver) -> None:
    agent = make_agent(dns, 25)  # DictResolver: unknown domain → permanent DnsError
    [r] = await agent.deliver(mail())
    await agent.close()
    assert r.outcome is Outcome.BOUNCED
    assert r.reply.code == 550 and r.reply.enhanced == "5.1.2"
    assert "Host or domain name not found" in r.reply.text
    assert not r.remote_reported


async def test_temporary_dns_failure_defers(dns: DictResolver) -> None:
    dns.mx[DOMAIN] = DnsError("SERVFAIL", temporary=True)
    agent = make_agent(dns, 25)
    [r] = await agent.deliver(mail())
    await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.code == 451 and r.reply.enhanced == "4.4.3"


async def test_all_mx_hosts_unknown_bounces(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "gone1.example.net", "gone2.example.net")
    agent = make_agent(dns, 25)
    [r] = await agent.deliver(mail())
    await agent.close()
    assert r.outcome is Outcome.BOUNCED
    assert r.reply.enhanced == "5.1.2"
    assert "gone1.example.net" in r.reply.text and "gone2.example.net" in r.reply.text


async def test_no_mx_reachable_defers_naming_the_last_host(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.2"]
    dns.addresses["mx2.example.net"] = ["127.0.0.3"]
    with smtp_sink() as sink:  # only to own a port nobody listens on at .2 and .3
        agent = make_agent(dns, sink.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.code == 451 and r.reply.enhanced == "4.4.1"
    assert f"mx2.example.net[127.0.0.3]:{sink.port}" in r.reply.text
    assert "Connection refused" in r.reply.text
    assert agent.stats.connect_failures == 2


async def test_4xx_to_mail_tries_next_mx(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.2"]
    dns.addresses["mx2.example.net"] = ["127.0.0.1"]
    with smtp_sink(dump=True) as good:
        with smtp_sink("-r", "MAIL", host="127.0.0.2", port=good.port) as busy:
            agent = make_agent(dns, good.port)
            [r] = await agent.deliver(mail())
            await agent.close()
            assert busy.wait_counters(sess=1)["mesg"] == 0
        assert len(good.wait_messages(1)) == 1
    assert r.outcome is Outcome.DELIVERED
    assert r.relay.startswith("mx2.example.net[")


async def test_4xx_to_mail_from_the_only_mx_is_the_answer(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.1"]
    with smtp_sink("-r", "MAIL") as busy:
        agent = make_agent(dns, busy.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.code == 450 and r.reply.enhanced == "4.3.0"
    assert r.remote_reported


async def test_5xx_to_mail_is_final_no_next_mx(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.2"]
    dns.addresses["mx2.example.net"] = ["127.0.0.1"]
    with smtp_sink() as second:
        with smtp_sink("-f", "MAIL", host="127.0.0.2", port=second.port):
            agent = make_agent(dns, second.port)
            [r] = await agent.deliver(mail())
            await agent.close()
        counters = second.wait_counters(timeout=0.3, sess=1)
    assert r.outcome is Outcome.BOUNCED
    assert r.reply.code == 500
    assert r.relay.startswith("mx1.example.net[")
    assert counters["sess"] == 0 and counters["mesg"] == 0  # the second MX was never asked


async def test_421_greeting_moves_to_next_mx(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.2"]
    dns.addresses["mx2.example.net"] = ["127.0.0.1"]
    with smtp_sink() as good, smtp_sink("-Q", "CONNECT", host="127.0.0.2", port=good.port):
        agent = make_agent(dns, good.port)
        [r] = await agent.deliver(mail())
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert r.relay.startswith("mx2.example.net[")


async def test_cached_connection_skips_dns(dns: DictResolver) -> None:
    dns.add_mx(DOMAIN, "mx1.example.net")
    dns.addresses["mx1.example.net"] = ["127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        for i in range(3):
            [r] = await agent.deliver(mail(qid=f"Q{i}"))
            assert r.outcome is Outcome.DELIVERED
        await agent.close()
    assert dns.mx_lookups == [DOMAIN]
    assert agent.stats.connections_opened == 1 and agent.stats.connections_reused == 2


async def test_destinations_do_not_share_connections(dns: DictResolver) -> None:
    for domain in ("a.example", "b.example"):
        dns.add_mx(domain, "mx.shared.example")
    dns.addresses["mx.shared.example"] = ["127.0.0.1"]
    with smtp_sink() as sink:
        agent = make_agent(dns, sink.port)
        for domain in ("a.example", "b.example", "a.example", "b.example"):
            [r] = await agent.deliver(mail(domain=domain))
            assert r.outcome is Outcome.DELIVERED
        await agent.close()
        counters = sink.wait_counters(mesg=4, sess=2)
    assert agent.stats.connections_opened == 2
    assert counters["sess"] == 2
