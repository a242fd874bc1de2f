"""Python's imaplib against a real ``hayate serve``: IMAPS and STARTTLS, the TLS rule for
passwords, every common command, two sessions seeing each other's changes, and a message
sent over SMTP showing up in an IDLE-ing session within a second."""

from __future__ import annotations

import imaplib
import socket
import time
from collections.abc import Callable

from tests.integration.imap.conftest import PASSWORD, Served


def imaps(served: Served, user: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("localhost", served.imaps, ssl_context=served.tls_context(),
                               timeout=10)
    client.login(user, PASSWORD)
    return client


def wait_exists(client: imaplib.IMAP4, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        typ, _data = client.noop()
        assert typ == "OK"
        status = client.status("INBOX", "(MESSAGES)")[1][0]
        if f"MESSAGES {count})".encode() in status:
            return
        time.sleep(0.1)
    raise AssertionError(f"INBOX never reached {count} messages")


def test_starttls_is_required_before_login(served: Served, account: Callable[[], str]) -> None:
    user = account()
    client = imaplib.IMAP4("localhost", served.imap, timeout=10)
    assert "STARTTLS" in client.capabilities and "LOGINDISABLED" in client.capabilities
    try:
        client.login(user, PASSWORD)
        raise AssertionError("LOGIN without TLS was accepted")
    except imaplib.IMAP4.error as exc:
        assert "PRIVACYREQUIRED" in str(exc)
    client.starttls(ssl_context=served.tls_context())
    typ, _ = client.login(user, PASSWORD)
    assert typ == "OK"
    caps = client.capability()[1][0].split()
    assert b"IDLE" in caps and b"UIDPLUS" in caps and b"STARTTLS" not in caps
    client.logout()


def test_wrong_password_over_imaps(served: Served, account: Callable[[], str]) -> None:
    user = account()
    client = imaplib.IMAP4_SSL("localhost", served.imaps, ssl_context=served.tls_context(),
                               timeout=10)
    try:
        client.login(user, "not-the-password")
        raise AssertionError("a wrong password was accepted")
    except imaplib.IMAP4.error as exc:
        assert "AUTHENTICATIONFAILED" in str(exc)
    assert client.login(user, PASSWORD)[0] == "OK"
    client.logout()


def test_everyday_commands(served: Served, account: Callable[[], str]) -> None:
    user = account()
    served.send(user, "hello one")
    served.send(user, "hello two")
    c = imaps(served, user)
    wait_exists(c, 2)
    typ, folders = c.list()
    assert typ == "OK"
    assert b'(\\HasNoChildren \\Sent) "/" Sent' in folders
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = c.fetch("1:2", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [part[1] for part in data if isinstance(part, tuple)]
    assert subjects == [b"Subject: hello one\r\n\r\n", b"Subject: hello two\r\n\r\n"]
    typ, data = c.uid("SEARCH", "SUBJECT", '"two"')
    assert data == [b"2"]
    typ, data = c.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0]
    typ, data = c.append("Drafts", "(\\Draft)", None,
                         b"From: me@hayate.test\r\nSubject: draft\r\n\r\nunfinished\r\n")
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = c.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = c._simple_command("MOVE", "2", "Trash")  # type: ignore[attr-defined]
    assert typ == "OK"
    assert c.response("EXPUNGE")[1] == [b"2"]  # MOVE expunged message 2 here
    typ, data = c.status("Trash", "(MESSAGES)")
    assert data == [b"Trash (MESSAGES 1)"]
    typ, data = c.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert typ == "OK" and data == [b"1"]
    assert c.create("Projects/2024")[0] == "OK"
    assert c.rename("Projects", "Work")[0] == "OK"
    typ, data = c.list("\"\"", "Work*")
    assert data == [b'(\\HasChildren) "/" Work', b'(\\HasNoChildren) "/" Work/2024']
    assert c.delete("Work/2024")[0] == "OK"
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"
    assert c.close()[0] == "OK"
    c.logout()


def test_two_sessions_see_each_other(served: Served, account: Callable[[], str]) -> None:
    user = account()
    for n in range(3):
        served.send(user, f"shared {n}")
    a = imaps(served, user)
    wait_exists(a, 3)
    b = imaps(served, user)
    a.select("INBOX")
    b.select("INBOX")
    b.store("2", "+FLAGS", "(\\Seen)")
    a.noop()
    fetches = a.response("FETCH")[1]
    assert any(b"\\Seen" in item for item in fetches if isinstance(item, bytes))
    b.store("3", "+FLAGS", "(\\Deleted)")
    b.expunge()
    a.noop()
    assert a.response("EXPUNGE")[1] == [b"3"]
    served.send(user, "shared 3")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        a.noop()
        exists = a.response("EXISTS")[1]
        if exists and exists[-1] == b"3":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the new message never showed up")
    _typ, data = a.fetch("3", "(UID)")
    assert data == [b"3 (UID 4)"]  # UID 3 is never given again
    a.logout()
    b.logout()


def test_smtp_delivery_reaches_an_idle_session_within_a_second(
    served: Served, account: Callable[[], str]
) -> None:
    user = account()
    c = imaps(served, user)
    c.select("INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.readline().startswith(b"+ idling")
    started = time.monotonic()
    served.send(user, "pushed")
    sent = time.monotonic()
    sock: socket.socket = c.socket()
    sock.settimeout(5)
    line = c.readline()
    arrived = time.monotonic()
    assert line == b"* 1 EXISTS\r\n"
    # From the end of the SMTP transaction to the EXISTS line.
    print(f"SMTP 250 → IDLE EXISTS: {arrived - sent:.3f} s (send took {sent - started:.3f} s)")
    assert arrived - sent < 1.0
    c.send(b"DONE\r\n")
    while True:
        line = c.readline()
        if line.startswith(b"i1 "):
            break
    assert line.startswith(b"i1 OK")
    c.logout()
