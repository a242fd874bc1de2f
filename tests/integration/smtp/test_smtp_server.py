"""The SMTP server over real sockets on 127.0.0.1: smtplib and raw bytes, MX listener."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket

import pytest
from tests.integration.smtp.conftest import Connect, RawClient, Running, StartServer

from hayate.core.envelope import Listener

pytestmark = pytest.mark.timeout(30)

GOOD = b"Subject: good\r\n\r\nhello\r\n"


async def send_good(client: RawClient, body: bytes = GOOD) -> bytes:
    """One complete transaction on an open (greeted, EHLO'd) connection; the DATA reply."""
    await client.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert await client.replies(3) == [
        b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"
    ]
    await client.send(body + b".\r\n")
    reply: bytes = await client.reply()
    return reply


async def still_works(run: Running, connect: Connect) -> None:
    """A fresh connection still gets a message accepted."""
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    before = len(run.sink.messages)
    assert (await send_good(client)).startswith(b"250 2.0.0 Ok: queued as")
    assert len(run.sink.messages) == before + 1
    assert run.sink.messages[-1].data == GOOD


def smtplib_send(port: int, sender: str, rcpts: list[str], msg: bytes) -> dict[str, object]:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        return dict(client.sendmail(sender, rcpts, msg))


async def test_plain_mx_delivery_with_smtplib(start_server: StartServer) -> None:
    run = await start_server(Listener.MX)
    msg = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\n.dot line\r\nbody\r\n"
    refused = await asyncio.to_thread(smtplib_send, run.port, "a@x.test",
                                      ["b@y.test", "c@example.test"], msg)
    assert refused == {}
    [got] = run.sink.messages
    assert got.envelope.sender == "a@x.test"
    assert got.envelope.recipients == ("b@y.test", "c@example.test")
    assert got.data == msg
    assert got.session.listener is Listener.MX
    assert got.session.peer_ip == "127.0.0.1" and got.session.peer_port > 0
    assert got.session.esmtp and got.session.helo
    assert got.session.tls_version is None and got.session.auth_user is None
    assert not got.session.relay_allowed


async def test_relay_refused_unless_in_relay_networks(start_server: StartServer) -> None:
    closed = await start_server(Listener.MX)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(smtplib_send, closed.port, "a@x.test", ["z@elsewhere.test"], GOOD)
    assert info.value.recipients["z@elsewhere.test"] == (554, b"5.7.1 Relay access denied")
    trusted = await start_server(Listener.MX, relay_networks=("127.0.0.0/8",))
    await asyncio.to_thread(smtplib_send, trusted.port, "a@x.test", ["z@elsewhere.test"], GOOD)
    assert trusted.sink.messages[0].session.relay_allowed


async def test_ehlo_over_the_wire(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    assert await client.reply() == (
        b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-STARTTLS\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
    )


async def test_pipelining_replies_in_order(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<z@elsewhere.test>\r\n"
        b"RCPT TO:<c@y.test>\r\nNOOP\r\nDATA\r\n"
    )
    ehlo = await client.reply()
    assert ehlo.startswith(b"250-mx.test\r\n")
    assert await client.replies(6) == [
        b"250 2.1.0 Ok\r\n",
        b"250 2.1.5 Ok\r\n",
        b"554 5.7.1 Relay access denied\r\n",
        b"250 2.1.5 Ok\r\n",
        b"250 2.0.0 Ok\r\n",
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
    ]
    # Two messages, the first through a sink that suspends, then QUIT: all in one write.
    await client.send(
        b"X-Sink: slow\r\n\r\none\r\n.\r\n"
        b"MAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
    )
    assert await client.replies(4) == [
        b"250 2.0.0 Ok: queued as Q1\r\n", b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n",
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
    ]
    await client.send(b"two\r\n.\r\nQUIT\r\n")
    assert await client.replies(2) == [b"250 2.0.0 Ok: queued as Q2\r\n", b"221 2.0.0 Bye\r\n"]
    assert await client.closed_by_server()
    assert [m.envelope.recipients for m in run.sink.messages] == [("b@y.test", "c@y.test"),
                                                                   ("b@y.test",)]


async def test_many_pipelined_transactions_with_non_eager_calls(
    start_server: StartServer, connect: Connect
) -> None:
    run = await start_server(Listener.MX, eager_calls=False)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    one = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
    for i in range(20):
        await client.send(one)
        assert (await client.replies(3))[2].startswith(b"354")
        await client.send(f"X-N: {i}\r\n\r\nbody\r\n.\r\n".encode())
        assert await client.reply() == f"250 2.0.0 Ok: queued as Q{i + 1}\r\n".encode()
    assert [m.data for m in run.sink.messages][-1] == b"X-N: 19\r\n\r\nbody\r\n"


async def test_reading_pauses_while_the_sink_works(start_server: StartServer,
                                                   connect: Connect) -> None:
    from hayate.smtp.server import PAUSE_ABOVE

    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    await client.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    await client.replies(3)
    noop = b"NOOP " + b"n" * 4000 + b"\r\n"
    client.writer.write(b"X-Sink: hold\r\n\r\nx\r\n.\r\n" + noop * 600)  # 2.4 MB pipelined
    [session] = run.server.sessions
    peak = 0
    for _ in range(30):
        await asyncio.sleep(0.01)
        peak = max(peak, session._machine.buffered)
    assert 0 < peak <= PAUSE_ABOVE + 256 * 1024  # paused: not all 2.4 MB were read
    run.sink.release.set()
    assert (await client.reply()).startswith(b"250 2.0.0 Ok: queued as")
    assert await client.replies(600) == [b"250 2.0.0 Ok\r\n"] * 600
    assert len(run.sink.messages) == 1


async def test_too_many_recipients(start_server: StartServer) -> None:
    run = await start_server(Listener.MX, max_recipients=2)
    refused = await asyncio.to_thread(
        smtplib_send, run.port, "a@x.test", ["b@y.test", "c@y.test", "d@y.test"], GOOD
    )
    assert refused == {"d@y.test": (452, b"4.5.3 Error: too many recipients")}
    assert run.sink.messages[0].envelope.recipients == ("b@y.test", "c@y.test")


async def test_oversized_message_by_size_parameter(start_server: StartServer,
                                                   connect: Connect) -> None:
    run = await start_server(Listener.MX, max_message_size=1000)
    with pytest.raises(smtplib.SMTPSenderRefused) as info:  # smtplib sends SIZE= itself
        await asyncio.to_thread(smtplib_send, run.port, "a@x.test", ["b@y.test"], b"x" * 2000)
    assert info.value.smtp_code == 552
    assert info.value.smtp_error == b"5.3.4 Error: message size exceeds fixed limit"
    assert run.sink.messages == []
    await still_works(run, connect)


async def test_oversized_message_by_content(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX, max_message_size=10_000)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    body = (b"y" * 998 + b"\r\n") * 200  # 200 kB, no SIZE parameter
    assert await send_good(client, body) == b"552 5.3.4 Error: message size exceeds fixed limit\r\n"
    assert run.sink.messages == []
    assert (await send_good(client)).startswith(b"250 2.0.0")  # same session goes on
    assert run.server.stats.messages_rejected == 1


@pytest.mark.parametrize(
    "smuggle", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"],
    ids=["LF.LF", "CR.CR", "CRLF.LF", "LF.CRLF", "CR.CRLF"],
)
async def test_smtp_smuggling_is_refused(start_server: StartServer, connect: Connect,
                                         smuggle: bytes) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    body = (
        b"Subject: first\r\n\r\nfirst" + smuggle
        + b"MAIL FROM:<admin@x.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nevil\r\n"
    )
    assert await send_good(client, body) == b"550 5.5.2 bare CR or LF in message not allowed\r\n"
    await client.send(b"NOOP\r\n")
    assert await client.reply() == b"250 2.0.0 Ok\r\n"  # no stray replies from smuggled commands
    assert run.sink.messages == []
    assert (await send_good(client)).startswith(b"250 2.0.0")
    assert all(b"smuggled" not in m.data for m in run.sink.messages)
    assert len(run.sink.messages) == 1


async def test_bare_lf_inside_message(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    assert await send_good(client, b"Subject: x\r\n\r\nline one\nline two\r\n") == (
        b"550 5.5.2 bare CR or LF in message not allowed\r\n"
    )
    await still_works(run, connect)


async def test_bare_lf_command(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\nNOOP\r\n")
    assert await client.replies(2) == [
        b"500 5.5.2 Error: bare CR or LF in command not allowed\r\n", b"250 2.0.0 Ok\r\n"
    ]


async def test_garbage_and_binary_commands(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\x00\xff\xfe garbage\r\n")
    for reply in await client.replies(2):
        assert reply.startswith(b"500 5.5.2 ")
    await client.send(b"GET / HTTP/1.1\r\nEHLO c\r\n")
    assert (await client.reply()).startswith(b"500 5.5.2 ")
    assert (await client.reply()).startswith(b"250-mx.test")
    assert (await send_good(client)).startswith(b"250 2.0.0")
    await still_works(run, connect)


async def test_too_many_bad_commands_closes(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX, max_bad_commands=5)
    client = await connect(run.port)
    await client.send(b"BOGUS\r\n" * 10)
    replies = await client.replies(6)
    assert replies[:5] == [b"500 5.5.2 Error: command not recognized\r\n"] * 5
    assert replies[5] == b"421 4.7.0 mx.test Error: too many errors\r\n"
    assert await client.closed_by_server()
    assert run.server.stats.error_disconnects == 1
    await still_works(run, connect)


async def test_command_timeout(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX, command_timeout=0.3)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    started = asyncio.get_running_loop().time()
    assert await client.reply(timeout=3) == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    assert 0.25 < asyncio.get_running_loop().time() - started < 2.0
    assert await client.closed_by_server()
    assert run.server.stats.timeouts == 1
    await still_works(run, connect)


async def test_data_timeout_bounds_the_whole_data_phase(start_server: StartServer,
                                                        connect: Connect) -> None:
    run = await start_server(Listener.MX, command_timeout=5, data_timeout=0.4)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    await client.replies(4)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def drip() -> None:  # a slow drip: each read is fresh, the phase is not
        for _ in range(40):
            try:
                await client.send(b"drip\r\n")
            except ConnectionError:
                return
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    try:
        assert await client.reply(timeout=3) == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
        assert 0.35 < loop.time() - started < 1.5
    finally:
        dripping.cancel()
    assert run.sink.messages == [] and run.server.stats.timeouts == 1


async def test_connections_per_ip_limit(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX, max_connections_per_ip=2)
    first = await connect(run.port)
    await connect(run.port)
    third = await connect(run.port, greeting=False)
    assert await third.reply() == b"421 4.7.0 mx.test Error: too many connections\r\n"
    assert await third.closed_by_server()
    assert run.server.stats.refused == 1
    first.close()
    for _ in range(100):  # the server notices the close
        if run.server.stats.active < 2:
            break
        await asyncio.sleep(0.01)
    await still_works(run, connect)


async def test_total_connection_limit(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX, max_connections=1)
    await connect(run.port)
    second = await connect(run.port, greeting=False)
    assert await second.reply() == b"421 4.7.0 mx.test Error: too many connections\r\n"


async def test_sink_crash_answers_451_and_server_survives(
    start_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    with caplog.at_level(logging.ERROR, logger="hayate.smtp"):
        reply = await send_good(client, b"X-Sink: crash\r\n\r\nx\r\n")
    assert reply == b"451 4.3.0 Internal error, try again later\r\n"
    assert "disk on fire" in caplog.text
    assert run.server.stats.internal_errors == 1
    assert await send_good(client, b"X-Sink: refuse\r\n\r\nx\r\n") == (
        b"554 5.6.0 Content refused\r\n"
    )
    assert (await send_good(client)).startswith(b"250 2.0.0")
    await still_works(run, connect)


async def test_policy_refusal_of_sender(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\nMAIL FROM:<bad@x.test>\r\nRCPT TO:<b@y.test>\r\n")
    await client.reply()
    assert await client.replies(2) == [
        b"550 5.7.1 Sender refused\r\n", b"503 5.5.1 Error: need MAIL command\r\n"
    ]


async def test_close_logs_one_line_and_counts(start_server: StartServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    run = await start_server(Listener.MX)
    with caplog.at_level(logging.INFO, logger="hayate.smtp"):
        await asyncio.to_thread(smtplib_send, run.port, "a@x.test", ["b@y.test"], GOOD)
        for _ in range(100):
            if run.server.stats.active == 0:
                break
            await asyncio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "hayate.smtp"]
    assert len(lines) == 1 and lines[0].startswith("disconnect from 127.0.0.1:")
    assert "accepted=1" in lines[0]
    stats = run.server.stats
    assert (stats.connections, stats.active, stats.messages_accepted) == (1, 0, 1)


async def test_shutdown_says_421(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    run.server.close()
    assert await client.reply() == (
        b"421 4.3.2 mx.test Service shutting down, closing connection\r\n"
    )
    assert await client.closed_by_server()


async def test_prebound_socket(start_server: StartServer) -> None:
    from hayate.smtp.server import SmtpServer

    run = await start_server(Listener.MX)  # for its policy and sink
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    other = SmtpServer(run.server.settings, run.policy, run.sink)
    await other.start(sock=sock)
    try:
        assert other.port == sock.getsockname()[1]
        await asyncio.to_thread(smtplib_send, other.port, "a@x.test", ["b@y.test"], GOOD)
        assert len(run.sink.messages) == 1 and other.stats.messages_accepted == 1
    finally:
        other.close()
        await other.wait_closed()


async def test_reuse_port_lets_two_servers_share_a_port(start_server: StartServer) -> None:
    from hayate.smtp.server import SmtpServer

    run = await start_server(Listener.MX)
    a = SmtpServer(run.server.settings, run.policy, run.sink)
    await a.start("127.0.0.1", 0, reuse_port=True)
    b = SmtpServer(run.server.settings, run.policy, run.sink)
    try:
        await b.start("127.0.0.1", a.port, reuse_port=True)
        for _ in range(6):
            await asyncio.to_thread(smtplib_send, a.port, "a@x.test", ["b@y.test"], GOOD)
        assert a.stats.messages_accepted + b.stats.messages_accepted == 6
    finally:
        a.close()
        b.close()
