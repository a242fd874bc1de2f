"""Deliverability end to end for authenticated submission: mail a user sends through the
submission port (STARTTLS + AUTH PLAIN, ``[policy]`` defaults) is DKIM-signed for its own
domain, and ``[suppression] notify_sender = true`` sends the user a DSN for a suppressed
recipient while the other recipients are delivered.

Each test runs a real ``hayate serve`` with the submission listener and TLS, Postfix's
smtp-sink as the remote MX (through a transport rule) and a DNS server on 127.0.0.1 so that
no lookup leaves the machine. What is asserted is what a recipient, the sender and an
operator see: the signature at the receiver (verified with dkimpy), the DSN in the sender's
INBOX (read with imaplib) and the output of ``hayate events``.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import dkim
import pytest
from tests.integration.mta.conftest import sink_messages, wait_for
from tests.support.dnsserver import TestDnsServer, zone_text
from tests.support.hayate_server import HayateServer
from tests.support.sink import smtp_sink

pytestmark = pytest.mark.peer

DOMAIN = "example.test"
REMOTE = "example.net"
USER, PASSWORD = f"alice@{DOMAIN}", "alice-pw-123"


def sections(**extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "queue": {"scan_interval": 0.2, "min_backoff": 1.0},
        "events": {"flush_interval": 0.1},
        "suppression": {"cache_ttl": 0.2},
    }
    for name, values in extra.items():
        out.setdefault(name, {}).update(values)
    return out


def message(subject: str, sender: str, to: str) -> bytes:
    return (f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {formatdate()}\r\nMessage-ID: {make_msgid(domain=DOMAIN)}\r\n"
            f"\r\nBody of {subject}\r\n").encode()


def submit(port: int, rcpts: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    """STARTTLS, AUTH PLAIN as ``USER``, one transaction; the refused recipients."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.starttls(context=context)
        client.ehlo("client.test")
        assert "PLAIN" in client.esmtp_features.get("auth", "").upper().split()
        client.user, client.password = USER, PASSWORD
        code, _ = client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        assert code == 235
        return client.sendmail(USER, rcpts, data)


def events(server: HayateServer, recipient: str) -> list[dict[str, Any]]:
    out = server.cli("events", "--recipient", recipient, "--json").stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def dkim_record(server: HayateServer, selector: str) -> str:
    server.cli("dkim", "keygen", DOMAIN, "--selector", selector)
    show = server.cli("dkim", "show", DOMAIN, selector).stdout.decode()
    value: str = next(line.split(":", 1)[1].strip() for line in show.splitlines()
                      if line.startswith("value:"))
    assert value.startswith("v=DKIM1; k=rsa; p=")
    return value


# --- 1. DKIM on authenticated submission ------------------------------------------------------


def test_submitted_mail_is_dkim_signed_for_the_users_domain(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink, TestDnsServer(
        {DOMAIN: zone_text("@ MX 10 mx\nmx A 127.0.0.1\n")}
    ) as dns:
        server = HayateServer(
            tmp_path, local_domains=(DOMAIN,), listeners=("smtp", "submission"), tls=True,
            transport=[{"domain": REMOTE, "nexthop": sink.address}],
            sections=sections(dns={"nameservers": [dns.address], "timeout": 2.0}),
        )
        value = dkim_record(server, "sub1")
        server.cli("user", "add", USER, input=f"{PASSWORD}\n".encode())
        with server:
            refused = submit(server.ports["submission"], [f"bob@{REMOTE}"],
                             message("submitted", USER, f"bob@{REMOTE}"))
            assert refused == {}
            (got,) = sink_messages(sink, 1)
    assert got.recipients == (f"bob@{REMOTE}",)
    raw = got.content.replace(b"\n", b"\r\n")
    headers = email.message_from_bytes(raw, policy=email.policy.default)
    assert headers["Subject"] == "submitted"
    signature = str(headers["DKIM-Signature"])
    assert "d=example.test" in signature.replace(" ", "")
    assert "s=sub1" in signature.replace(" ", "")
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        assert name.rstrip(b".") == b"sub1._domainkey.example.test"
        return value.encode()

    assert dkim.verify(raw, dnsfunc=dnsfunc)
    assert asked
    assert b"Body of submitted" in raw
    tampered = raw.replace(b"Body of submitted", b"Body of submitteD")
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)


# --- 2. notify_sender: a DSN for a suppressed recipient ---------------------------------------


def inbox(port: int) -> list[EmailMessage]:
    """Every message in ``USER``'s INBOX, read over IMAP (LOGIN in plain text on loopback)."""
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as client:
        client.login(USER, PASSWORD)
        status, _ = client.select("INBOX", readonly=True)
        assert status == "OK"
        status, data = client.uid("SEARCH", "ALL")
        assert status == "OK"
        out: list[EmailMessage] = []
        for uid in data[0].split():
            status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            assert status == "OK"
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            out.append(email.message_from_bytes(raw, policy=email.policy.default))
        return out


def delivery_status(dsn: EmailMessage) -> str:
    """The text of the message/delivery-status part of a DSN."""
    for part in dsn.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                return "\n".join(str(block) for block in payload)
            return str(payload)
    raise AssertionError(f"no message/delivery-status part in {dsn!s}")


def test_suppressed_recipient_gets_the_sender_a_dsn(tmp_path: Path) -> None:
    gone, ok = f"gone@{REMOTE}", f"ok@{REMOTE}"
    with smtp_sink(dump=True) as sink, TestDnsServer(
        {DOMAIN: zone_text("@ MX 10 mx\nmx A 127.0.0.1\n")}
    ) as dns:
        server = HayateServer(
            tmp_path, local_domains=(DOMAIN,), tls=True,
            listeners=("smtp", "submission", "imap"),
            transport=[{"domain": REMOTE, "nexthop": sink.address}],
            sections=sections(dns={"nameservers": [dns.address], "timeout": 2.0},
                              suppression={"notify_sender": True},
                              mailbox={"plaintext_auth": True}),
        )
        server.cli("user", "add", USER, input=f"{PASSWORD}\n".encode())
        server.cli("suppression", "add", gone, "--reason", "test")
        with server:
            refused = submit(server.ports["submission"], [gone, ok],
                             message("to both", USER, f"list@{REMOTE}"))
            assert refused == {}  # suppression happens in the queue, not at RCPT
            (delivered,) = sink_messages(sink, 1)
            dsns = wait_for(lambda: inbox(server.ports["imap"]), what="a DSN in alice's INBOX")
            kinds = wait_for(
                lambda: [e for e in events(server, gone) if e["kind"] == "suppressed"],
                what="suppressed event")
            wait_for(lambda: any(e["kind"] == "delivered" for e in events(server, ok)),
                     what="delivered event")
            time.sleep(0.5)  # a message wrongly sent to the suppressed address would be here
            assert len(sink.messages()) == 1
            assert len(inbox(server.ports["imap"])) == 1  # one DSN, nothing else
    assert delivered.recipients == (ok,)
    assert b"Subject: to both" in delivered.content
    assert kinds[0]["recipient"] == gone
    assert "5.7.1" in json.dumps(kinds[0])
    (dsn,) = dsns
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    status = delivery_status(dsn)
    assert gone in status
    assert ok not in status
    assert "Action: failed" in status
    assert "Status: 5.7.1" in status
