"""Submission listeners over real sockets: STARTTLS, implicit TLS, AUTH; swaks and smtp-source."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import smtplib
import ssl

import pytest
from tests.integration.smtp.conftest import PASSWORD, USER, Connect, StartServer

from hayate.core.envelope import Listener

pytestmark = pytest.mark.timeout(60)

MSG = b"From: user@example.test\r\nTo: friend@elsewhere.test\r\nSubject: hi\r\n\r\nhello\r\n"
SWAKS = "/usr/bin/swaks"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def plain(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def submit_starttls(port: int, ctx: ssl.SSLContext, mechanism: str, password: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.ehlo("client.test")
        assert not client.has_extn("auth")  # not offered before TLS
        client.starttls(context=ctx)
        client.ehlo("client.test")
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert not client.has_extn("starttls") and not client.has_extn("chunking")
        client.user, client.password = USER, password
        authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        client.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
        client.sendmail(USER, ["friend@elsewhere.test"], MSG)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_then_auth_on_submission(start_server: StartServer,
                                                client_tls: ssl.SSLContext,
                                                mechanism: str) -> None:
    run = await start_server(Listener.SUBMISSION)
    await asyncio.to_thread(submit_starttls, run.port, client_tls, mechanism, PASSWORD)
    [got] = run.sink.messages
    assert got.data == MSG
    assert got.envelope.recipients == ("friend@elsewhere.test",)  # relayed: authenticated
    assert got.session.listener is Listener.SUBMISSION
    assert got.session.auth_user == USER
    assert got.session.tls_version in ("TLSv1.2", "TLSv1.3") and got.session.tls_cipher
    assert got.session.helo == "client.test"


async def test_wrong_password(start_server: StartServer, client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSION)
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        await asyncio.to_thread(submit_starttls, run.port, client_tls, "PLAIN", "wrong")
    assert info.value.smtp_code == 535
    assert info.value.smtp_error == b"5.7.8 Authentication credentials invalid"
    assert run.server.stats.auth_failures == 1 and run.sink.messages == []


def submit_implicit(port: int, ctx: ssl.SSLContext) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=5, context=ctx) as client:
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        client.login(USER, PASSWORD)
        client.sendmail(USER, ["friend@elsewhere.test"], MSG)


async def test_implicit_tls_on_submissions(start_server: StartServer,
                                           client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSIONS)
    await asyncio.to_thread(submit_implicit, run.port, client_tls)
    [got] = run.sink.messages
    assert got.session.listener is Listener.SUBMISSIONS
    assert got.session.tls_version and got.session.auth_user == USER


async def test_auth_before_starttls_refused(start_server: StartServer, connect: Connect) -> None:
    run = await start_server(Listener.SUBMISSION)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    assert b"AUTH" not in await client.reply()
    await client.send(b"AUTH PLAIN " + plain(USER, PASSWORD) + b"\r\n")
    assert await client.reply() == (
        b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    )
    assert run.policy.auth_calls == 0  # the password never reached the policy


async def test_auth_not_offered_on_mx(start_server: StartServer, connect: Connect,
                                      client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\nSTARTTLS\r\n")
    await client.replies(2)
    await client.starttls(client_tls)
    await client.send(b"EHLO c\r\n")
    assert b"AUTH" not in await client.reply()
    await client.send(b"AUTH PLAIN " + plain(USER, PASSWORD) + b"\r\n")
    assert await client.reply() == b"503 5.5.1 Error: authentication not enabled\r\n"


async def test_mail_before_auth_refused(start_server: StartServer, connect: Connect,
                                        client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSION)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    await client.send(b"MAIL FROM:<user@example.test>\r\n")
    assert await client.reply() == b"530 5.7.0 Authentication required\r\n"
    await client.send(b"STARTTLS\r\n")
    assert await client.reply() == b"220 2.0.0 Ready to start TLS\r\n"
    await client.starttls(client_tls)
    await client.send(b"EHLO c\r\nMAIL FROM:<user@example.test>\r\n")
    await client.reply()
    assert await client.reply() == b"530 5.7.0 Authentication required\r\n"
    await client.send(b"AUTH PLAIN " + plain(USER, PASSWORD) + b"\r\n")
    assert await client.reply() == b"235 2.7.0 Authentication successful\r\n"
    await client.send(b"AUTH PLAIN " + plain(USER, PASSWORD) + b"\r\n")
    assert await client.reply() == b"503 5.5.1 Error: already authenticated\r\n"
    await client.send(b"MAIL FROM:<user@example.test>\r\n")
    assert await client.reply() == b"250 2.1.0 Ok\r\n"


async def test_auth_login_cancel(start_server: StartServer, connect: Connect,
                                 client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSIONS)
    client = await connect(run.port, client_tls)
    await client.send(b"EHLO c\r\nAUTH LOGIN\r\n")
    await client.reply()
    assert await client.reply() == b"334 VXNlcm5hbWU6\r\n"
    await client.send(b"*\r\n")
    assert await client.reply() == b"501 5.7.0 Authentication aborted\r\n"


async def test_repeated_auth_failures_disconnect(start_server: StartServer,
                                                 connect: Connect,
                                                 client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSIONS, max_bad_commands=3)
    client = await connect(run.port, client_tls)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    bad = b"AUTH PLAIN " + plain(USER, "guess") + b"\r\n"
    await client.send(bad * 3)
    assert await client.replies(4) == [b"535 5.7.8 Authentication credentials invalid\r\n"] * 3 + [
        b"421 4.7.0 mx.test Error: too many errors\r\n"
    ]
    assert await client.closed_by_server()
    assert run.server.stats.auth_failures == 3


async def test_auth_backend_failure_is_temporary(start_server: StartServer, connect: Connect,
                                                 client_tls: ssl.SSLContext,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    run = await start_server(Listener.SUBMISSIONS)

    async def broken(username: str, password: str) -> str | None:
        await asyncio.sleep(0)
        raise OSError("database is down")

    run.policy.authenticate = broken  # type: ignore[method-assign,unused-ignore]
    client = await connect(run.port, client_tls)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    with caplog.at_level(logging.ERROR, logger="hayate.smtp"):
        await client.send(b"AUTH PLAIN " + plain(USER, PASSWORD) + b"\r\n")
        assert await client.reply() == b"454 4.7.0 Temporary authentication failure\r\n"
    assert "database is down" in caplog.text


async def test_starttls_discards_injected_commands(start_server: StartServer, connect: Connect,
                                                   client_tls: ssl.SSLContext,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    run = await start_server(Listener.MX)
    client = await connect(run.port)
    await client.send(b"EHLO c\r\n")
    await client.reply()
    with caplog.at_level(logging.WARNING, logger="hayate.smtp"):
        injected = b"MAIL FROM:<evil@x.test>\r\n"
        await client.send(b"STARTTLS\r\n" + injected)
        assert await client.reply() == b"220 2.0.0 Ready to start TLS\r\n"
        await client.starttls(client_tls)
    assert f"discarded {len(injected)} bytes pipelined after STARTTLS" in caplog.text
    await client.send(b"EHLO c\r\nRCPT TO:<b@y.test>\r\n")
    await client.reply()
    assert await client.reply() == b"503 5.5.1 Error: need MAIL command\r\n"
    await client.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    assert (await client.replies(3))[2].startswith(b"354")
    await client.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert (await client.reply()).startswith(b"250 2.0.0")
    assert run.sink.messages[0].envelope.sender == "a@x.test"
    assert run.sink.messages[0].session.tls_version


async def test_failed_handshake_keeps_server_running(start_server: StartServer,
                                                     connect: Connect,
                                                     client_tls: ssl.SSLContext) -> None:
    run = await start_server(Listener.SUBMISSION)
    client = await connect(run.port)
    await client.send(b"STARTTLS\r\n")
    await client.reply()
    await client.send(b"this is not a TLS client hello\r\n" * 4)
    assert await client.closed_by_server()
    await asyncio.to_thread(submit_starttls, run.port, client_tls, "PLAIN", PASSWORD)
    assert len(run.sink.messages) == 1


# --------------------------------------------------------------------- real peers


def need(path: str) -> None:
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed")


async def run_peer(*argv: str, timeout: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.peer
async def test_swaks_starttls_auth_plain(start_server: StartServer) -> None:
    need(SWAKS)
    run = await start_server(Listener.SUBMISSION)
    code, out = await run_peer(
        SWAKS, "--server", f"127.0.0.1:{run.port}", "--tls", "--auth", "PLAIN",
        "--auth-user", USER, "--auth-password", PASSWORD,
        "--from", USER, "--to", "friend@elsewhere.test", "--pipeline",
    )
    assert code == 0, out
    [got] = run.sink.messages
    assert got.session.auth_user == USER and got.session.tls_version
    assert got.envelope.recipients == ("friend@elsewhere.test",)
    assert b"Subject: test" in got.data


@pytest.mark.peer
async def test_swaks_implicit_tls(start_server: StartServer) -> None:
    need(SWAKS)
    run = await start_server(Listener.SUBMISSIONS)
    code, out = await run_peer(
        SWAKS, "--server", f"127.0.0.1:{run.port}", "--tlsc", "--auth", "LOGIN",
        "--auth-user", USER, "--auth-password", PASSWORD,
        "--from", USER, "--to", "friend@elsewhere.test",
    )
    assert code == 0, out
    [got] = run.sink.messages
    assert got.session.listener is Listener.SUBMISSIONS and got.session.auth_user == USER


@pytest.mark.peer
async def test_swaks_wrong_password_fails(start_server: StartServer) -> None:
    need(SWAKS)
    run = await start_server(Listener.SUBMISSIONS)
    code, out = await run_peer(
        SWAKS, "--server", f"127.0.0.1:{run.port}", "--tlsc", "--auth", "PLAIN",
        "--auth-user", USER, "--auth-password", "nope",
        "--from", USER, "--to", "friend@elsewhere.test",
    )
    assert code != 0 and "535 5.7.8" in out
    assert run.sink.messages == []


@pytest.mark.peer
async def test_smtp_source_load(start_server: StartServer) -> None:
    need(SMTP_SOURCE)
    run = await start_server(Listener.MX)
    code, out = await run_peer(
        SMTP_SOURCE, "-s", "5", "-m", "100", "-l", "2048", "-f", "a@x.test", "-t", "b@y.test",
        f"127.0.0.1:{run.port}",
    )
    assert code == 0, out
    assert len(run.sink.messages) == 100
    assert all(len(m.data) > 2048 for m in run.sink.messages)
    assert run.server.stats.messages_accepted == 100
