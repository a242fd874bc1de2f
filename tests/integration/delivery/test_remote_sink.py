"""RemoteDeliveryAgent against Postfix's smtp-sink on 127.0.0.1 (nexthop delivery)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tests.integration.delivery.peers import CountingProxy, DictResolver
from tests.support.sink import smtp_sink

from hayate.config import DeliveryConfig
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob
from hayate.delivery.remote import RemoteDeliveryAgent

pytestmark = pytest.mark.peer

FAST = {"connect_timeout": 3.0, "command_timeout": 3.0, "tls": "none"}


def make_agent(dns: DictResolver, **settings: object) -> RemoteDeliveryAgent:
    config = DeliveryConfig.model_validate({**FAST, **settings})
    return RemoteDeliveryAgent(config, "client.hayate.test", dns)


def job(
    nexthop: str,
    *recipients: str,
    data: bytes = b"Subject: hello\r\n\r\nHello.\r\n",
    qid: str = "Q1",
    **extra: object,
) -> DeliveryJob:
    rcpts = recipients or ("rcpt@example.net",)
    return DeliveryJob(qid, "sender@example.org", rcpts, data, nexthop, nexthop, **extra)  # type: ignore[arg-type]


async def test_delivers_one_message_via_nexthop(dns: DictResolver) -> None:
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, "a@example.net"))
        await agent.close()
        [msg] = sink.wait_messages(1)
    [r] = results
    assert r.recipient == "a@example.net"
    assert r.outcome is Outcome.DELIVERED
    assert r.reply.code == 250 and r.reply.enhanced == "2.0.0"
    assert r.remote_reported
    assert r.relay == f"127.0.0.1[127.0.0.1]:{sink.port}"
    assert msg.mail_args.startswith("<sender@example.org>")
    assert msg.recipients == ("a@example.net",)
    assert msg.helo == "client.hayate.test"
    assert msg.content == b"Subject: hello\n\nHello.\n"
    assert dns.mx_lookups == [] and dns.address_lookups == []  # an IP nexthop needs no DNS


async def test_content_arrives_intact_with_dots_and_8bit(dns: DictResolver) -> None:
    body = (
        b"Subject: dots\r\n\r\n"
        b".starts with a dot\r\n"
        b"..two dots\r\n"
        b".\r\n"
        b"caf\xc3\xa9 \xff\xfe raw 8-bit\r\n"
        b"last line without CRLF"
    )
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address, data=body, body_8bit=True))
        await agent.close()
        [msg] = sink.wait_messages(1)
    assert r.outcome is Outcome.DELIVERED
    expected = body.replace(b"\r\n", b"\n") + b"\n"
    assert msg.content == expected
    assert "BODY=8BITMIME" in msg.mail_args


async def test_message_starting_with_a_dot(dns: DictResolver) -> None:
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address, data=b".X: y\r\n\r\nbody\r\n"))
        await agent.close()
        [msg] = sink.wait_messages(1)
    assert r.outcome is Outcome.DELIVERED
    assert msg.content == b".X: y\n\nbody\n"


async def test_many_recipients_share_one_transaction(dns: DictResolver) -> None:
    rcpts = tuple(f"user{i}@example.net" for i in range(25))
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, *rcpts))
        await agent.close()
        msgs = sink.wait_messages(1)
        counters = sink.wait_counters(sess=1)
    assert [r.recipient for r in results] == list(rcpts)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert len(msgs) == 1 and msgs[0].recipients == rcpts
    assert counters["mesg"] == 1 and counters["sess"] == 1


async def test_recipients_split_by_recipients_per_transaction(dns: DictResolver) -> None:
    rcpts = tuple(f"user{i}@example.net" for i in range(7))
    with smtp_sink(dump=True) as sink:
        agent = make_agent(dns, recipients_per_transaction=3)
        results = await agent.deliver(job(sink.address, *rcpts))
        await agent.close()
        msgs = sink.wait_messages(3)
    assert [r.recipient for r in results] == list(rcpts)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert sorted(len(m.recipients) for m in msgs) == [1, 3, 3]
    assert agent.stats.connections_opened == 1
    assert agent.stats.messages_sent == 3


async def test_connection_reuse_across_jobs(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns)
        for i in range(10):
            [r] = await agent.deliver(job(sink.address, qid=f"Q{i}"))
            assert r.outcome is Outcome.DELIVERED
        await agent.close()
        counters = sink.wait_counters(mesg=10, quit=1)
    assert agent.stats.connections_opened == 1
    assert agent.stats.connections_reused == 9
    assert agent.stats.messages_sent == 10
    assert counters["mesg"] == 10
    assert counters["sess"] == 1  # one SMTP session carried all ten messages
    assert counters["quit"] == 1  # and close() ended it politely


async def test_messages_per_connection_limit(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns, messages_per_connection=2)
        for i in range(5):
            [r] = await agent.deliver(job(sink.address, qid=f"Q{i}"))
            assert r.outcome is Outcome.DELIVERED
        await agent.close()
        counters = sink.wait_counters(mesg=5, sess=3)
    assert agent.stats.connections_opened == 3
    assert counters["sess"] == 3


async def test_idle_connection_closed_after_idle_timeout(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns, idle_timeout=0.2)
        [r] = await agent.deliver(job(sink.address))
        assert r.outcome is Outcome.DELIVERED
        assert agent.pool.idle_count() == 1
        counters = await asyncio.to_thread(sink.wait_counters, 3.0, sess=1, quit=1)
        assert agent.pool.idle_count() == 0
        assert counters["sess"] == 1 and counters["quit"] == 1
        [r] = await agent.deliver(job(sink.address, qid="Q2"))
        assert r.outcome is Outcome.DELIVERED
        await agent.close()
    assert agent.stats.connections_opened == 2
    assert agent.stats.connections_reused == 0


async def test_concurrency_limit_per_destination(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        async with CountingProxy((sink.host, sink.port)) as proxy:
            agent = make_agent(dns, connections_per_destination=2)
            jobs = [job(proxy.address, qid=f"Q{i}") for i in range(12)]
            batches = await asyncio.gather(*(agent.deliver(j) for j in jobs))
            await agent.close()
            assert all(r.outcome is Outcome.DELIVERED for rs in batches for r in rs)
            assert proxy.peak == 2  # reached, never exceeded
            assert proxy.total == 2  # the two connections carried all twelve messages
        counters = sink.wait_counters(mesg=12)
    assert counters["mesg"] == 12
    assert agent.stats.connections_opened == 2


async def test_dead_cached_connection_is_replaced_once(dns: DictResolver) -> None:
    with smtp_sink(dump=True) as sink:
        # The proxy cuts the first connection when the second MAIL FROM comes: the cached
        # session dies exactly as it is reused.
        async with CountingProxy((sink.host, sink.port), cut_at={0: 2}) as proxy:
            agent = make_agent(dns)
            [r1] = await agent.deliver(job(proxy.address, "one@example.net", qid="Q1"))
            [r2] = await agent.deliver(job(proxy.address, "two@example.net", qid="Q2"))
            await agent.close()
        msgs = sink.wait_messages(2)
    assert r1.outcome is Outcome.DELIVERED
    assert r2.outcome is Outcome.DELIVERED
    assert proxy.total == 2
    assert agent.stats.connections_opened == 2
    assert sorted(m.recipients for m in msgs) == [("one@example.net",), ("two@example.net",)]


async def test_connections_leave_from_the_source_address(dns: DictResolver) -> None:
    with smtp_sink(dump=True) as sink:
        config = DeliveryConfig.model_validate(FAST)
        agent = RemoteDeliveryAgent(config, "client.hayate.test", dns, source_ip="127.0.0.2")
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
        [msg] = sink.wait_messages(1)
    assert r.outcome is Outcome.DELIVERED
    assert msg.client_addr == "127.0.0.2"


async def test_421_in_the_middle_of_a_pipeline_defers(dns: DictResolver) -> None:
    # -Q RCPT: "421" and hang up after RCPT, while MAIL, RCPT and DATA were sent together.
    with smtp_sink("-Q", "RCPT") as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, "a@example.net", "b@example.net"))
        assert agent.pool.idle_count() == 0  # a closed session is not cached
        await agent.close()
    assert [r.outcome for r in results] == [Outcome.DEFERRED, Outcome.DEFERRED]
    assert results[0].reply.code == 421
    assert results[0].remote_reported


async def test_fresh_connection_lost_at_mail_defers(dns: DictResolver) -> None:
    with smtp_sink("-q", "MAIL") as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert (r.reply.code, r.reply.enhanced) == (451, "4.4.2")
    assert "lost connection" in r.reply.text and "MAIL FROM" in r.reply.text
    assert agent.stats.connections_opened == 1  # no endless reconnecting


async def test_4xx_on_rcpt_defers_with_remote_reply(dns: DictResolver) -> None:
    with smtp_sink("-r", "RCPT") as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, "a@example.net", "b@example.net"))
        await agent.close()
        counters = sink.wait_counters(sess=1)
    assert [r.outcome for r in results] == [Outcome.DEFERRED, Outcome.DEFERRED]
    assert results[0].reply.code == 450 and results[0].reply.enhanced == "4.3.0"
    assert results[0].reply.text == "Error: command failed"
    assert results[0].remote_reported
    assert counters["mesg"] == 0


async def test_5xx_on_rcpt_bounces(dns: DictResolver) -> None:
    with smtp_sink("-f", "RCPT") as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address))
        # The transaction stopped after RCPT: the connection is still good for the next job.
        [r2] = await agent.deliver(job(sink.address, qid="Q2"))
        await agent.close()
        counters = sink.wait_counters(sess=1)
    assert r.outcome is Outcome.BOUNCED
    assert r.reply.code == 500 and r.reply.enhanced == "5.3.0"
    assert r2.outcome is Outcome.BOUNCED
    assert agent.stats.connections_opened == 1
    assert counters["mesg"] == 0


async def test_5xx_on_data_bounces_every_recipient(dns: DictResolver) -> None:
    with smtp_sink("-f", "DATA") as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, "a@example.net", "b@example.net"))
        await agent.close()
    assert [r.outcome for r in results] == [Outcome.BOUNCED, Outcome.BOUNCED]
    assert results[0].reply.code == 500


async def test_4xx_after_end_of_data_defers(dns: DictResolver) -> None:
    with smtp_sink("-r", ".") as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.code == 450


async def test_server_without_esmtp_or_pipelining(dns: DictResolver) -> None:
    # -P: the greeting looks like a Cisco PIX and EHLO is refused, so HELO and one command
    # at a time are used.
    with smtp_sink("-P", dump=True) as sink:
        agent = make_agent(dns)
        for i in range(2):
            results = await agent.deliver(
                job(sink.address, "a@example.net", "b@example.net", qid=f"Q{i}")
            )
            assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DELIVERED]
        await agent.close()
        msgs = sink.wait_messages(2)
    assert len(msgs) == 2
    assert all(m.recipients == ("a@example.net", "b@example.net") for m in msgs)
    assert all("SIZE=" not in m.mail_args for m in msgs)
    assert agent.stats.connections_opened == 1


async def test_no_pipelining_server(dns: DictResolver) -> None:
    with smtp_sink("-p", dump=True) as sink:
        agent = make_agent(dns)
        results = await agent.deliver(job(sink.address, "a@example.net", "b@example.net"))
        await agent.close()
        [msg] = sink.wait_messages(1)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert msg.recipients == ("a@example.net", "b@example.net")


async def test_connection_refused_defers(dns: DictResolver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    agent = make_agent(dns)
    results = await agent.deliver(job(f"127.0.0.1:{port}", "a@example.net", "b@example.net"))
    await agent.close()
    assert [r.outcome for r in results] == [Outcome.DEFERRED, Outcome.DEFERRED]
    reply = results[0].reply
    assert reply.code == 451 and reply.enhanced == "4.4.1"
    assert f"127.0.0.1[127.0.0.1]:{port}" in reply.text
    assert "refused" in reply.text.lower()
    assert not results[0].remote_reported


async def test_silent_server_times_out(dns: DictResolver) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        port = listener.getsockname()[1]
        agent = make_agent(dns, command_timeout=0.3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        [r] = await agent.deliver(job(f"127.0.0.1:{port}"))
        elapsed = loop.time() - t0
        await agent.close()
    finally:
        listener.close()
    assert r.outcome is Outcome.DEFERRED
    assert "timed out" in r.reply.text
    assert "greeting" in r.reply.text
    assert elapsed < 2.0


async def test_421_greeting_defers(dns: DictResolver) -> None:
    with smtp_sink("-Q", "CONNECT") as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.code == 451
    assert "refused to talk to me" in r.reply.text and "421" in r.reply.text


async def test_connection_dropped_after_data_defers(dns: DictResolver) -> None:
    # -q .: hang up without a reply once the message is sent. It may have been kept:
    # deferring risks a duplicate, never a loss.
    with smtp_sink("-q", ".") as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.enhanced == "4.4.2"
    assert "lost connection" in r.reply.text
    assert not r.remote_reported


async def test_smtputf8_message_to_server_without_it_bounces(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns)
        [r] = await agent.deliver(job(sink.address, "josé@example.net", smtputf8=True))
        await agent.close()
        counters = sink.wait_counters(sess=1)
    assert r.outcome is Outcome.BOUNCED
    assert r.reply.code == 550 and r.reply.enhanced == "5.6.7"
    assert not r.remote_reported
    assert counters["mesg"] == 0


async def test_tls_encrypt_against_server_without_starttls_defers(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns, tls="encrypt")
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
        counters = sink.wait_counters(sess=1)
    assert r.outcome is Outcome.DEFERRED
    assert r.reply.enhanced == "4.7.5"
    assert "TLS is required" in r.reply.text
    assert counters["mesg"] == 0


async def test_tls_may_against_server_without_starttls_delivers(dns: DictResolver) -> None:
    with smtp_sink() as sink:
        agent = make_agent(dns, tls="may")
        [r] = await agent.deliver(job(sink.address))
        await agent.close()
    assert r.outcome is Outcome.DELIVERED
    assert agent.stats.tls_sessions == 0


async def test_concurrent_jobs_to_different_destinations(dns: DictResolver) -> None:
    with smtp_sink(dump=True) as sink_a, smtp_sink(dump=True) as sink_b:
        agent = make_agent(dns, connections_per_destination=1)
        jobs = [job(s.address, qid=f"{s.port}-{i}") for i in range(5) for s in (sink_a, sink_b)]
        batches = await asyncio.gather(*(agent.deliver(j) for j in jobs))
        await agent.close()
        assert len(sink_a.wait_messages(5)) == 5
        assert len(sink_b.wait_messages(5)) == 5
    assert all(r.outcome is Outcome.DELIVERED for rs in batches for r in rs)
    assert agent.stats.connections_opened == 2
