"""Deliverability end to end: a real ``hayate serve`` with DKIM, inbound checks, VERP,
bounce processing, suppression, events, egress sources and streams.

Each test starts its own server (one worker, short timers) and its own peers: Postfix's
smtp-sink as the remote MX (through a transport entry), a real DNS server on 127.0.0.1 for
SPF/DKIM/DMARC records, and, where a remote must refuse a recipient with 550 5.1.1, a second
``hayate serve`` acting as the receiving MX. What is asserted is what an operator or a
recipient sees: headers at the receiver, SMTP replies, and the output of ``hayate events``,
``hayate suppression list`` and ``hayate queue sites``.
"""

from __future__ import annotations

import base64
import json
import smtplib
import time
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.integration.mta.conftest import mailbox, send, sink_messages, wait_for
from tests.support.dnsserver import TestDnsServer, zone_text
from tests.support.hayate_server import HayateServer
from tests.support.sink import SinkMessage, smtp_sink

pytestmark = pytest.mark.peer

FAST = {"queue": {"scan_interval": 0.2, "min_backoff": 1.0},
        "events": {"flush_interval": 0.1},
        "suppression": {"cache_ttl": 0.2, "notify_sender": False}}


def sections(**extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {name: dict(values) for name, values in FAST.items()}
    for name, values in extra.items():
        out.setdefault(name, {}).update(values)
    return out


def message(subject: str, sender: str, to: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {formatdate()}\r\nMessage-ID: {make_msgid(domain='client.test')}\r\n"
            f"{extra}\r\nBody of {subject}\r\n").encode()


def events(server: HayateServer, recipient: str) -> list[dict[str, Any]]:
    out = server.cli("events", "--recipient", recipient, "--json").stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def event_kinds(server: HayateServer, recipient: str) -> list[str]:
    return [e["kind"] for e in events(server, recipient)]


def suppressed(server: HayateServer) -> dict[str, dict[str, Any]]:
    out = server.cli("suppression", "list", "--json").stdout.decode()
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {row["address"]: row for row in rows}


def envelope_sender(got: SinkMessage) -> str:
    return got.mail_args.split(">", 1)[0].lstrip("<")


def append_toml(server: HayateServer, text: str) -> None:
    """Add TOML the ``sections=`` helper cannot write (arrays of tables)."""
    with server.config_path.open("a") as f:
        f.write("\n" + text.strip() + "\n")


# --- 1. DKIM signing ------------------------------------------------------------------------


def test_relayed_mail_is_dkim_signed_and_inbound_mail_is_not(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink, TestDnsServer(
        {"example.test": zone_text("@ MX 10 mx\nmx A 127.0.0.1\n")}
    ) as dns:
        server = HayateServer(
            tmp_path, local_domains=("example.test",), relay_networks=("127.0.0.2/32",),
            transport=[{"domain": "example.net", "nexthop": sink.address}],
            sections=sections(dns={"nameservers": [dns.address], "timeout": 2.0}),
        )
        out = server.cli("dkim", "keygen", "example.test", "--selector", "s1").stdout.decode()
        assert "s1._domainkey.example.test" in out
        show = server.cli("dkim", "show", "example.test", "s1").stdout.decode()
        value = next(line.split(":", 1)[1].strip() for line in show.splitlines()
                     if line.startswith("value:"))
        assert value.startswith("v=DKIM1; k=rsa; p=")
        server.cli("user", "add", "alice@example.test", input=b"alice-pw-123\n")
        with server:
            # A relay client (127.0.0.2 is in relay_networks) sends out through the sink.
            send(server.ports["smtp"], "app@example.test", ["x@example.net"],
                 message("signed", "App <app@example.test>", "x@example.net"),
                 source="127.0.0.2")
            # Somebody outside sends to a local user on the MX port.
            send(server.ports["smtp"], "app@example.test", ["alice@example.test"],
                 message("inbound", "App <app@example.test>", "alice@example.test"))
            (got,) = sink_messages(sink, 1)
            inbox = wait_for(lambda: mailbox(tmp_path / "data", "alice@example.test"),
                             what="alice's mail")
        raw = got.content.replace(b"\n", b"\r\n")
        assert raw.startswith(b"DKIM-Signature:")
        assert b"d=example.test" in raw and b"s=s1" in raw

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            assert name.rstrip(b".") == b"s1._domainkey.example.test"
            return value.encode()

        assert dkim.verify(raw, dnsfunc=dnsfunc)
        tampered = raw.replace(b"Body of signed", b"Body of changed")
        assert not dkim.verify(tampered, dnsfunc=dnsfunc)
        (inbound,) = inbox
        assert inbound["Subject"] == "inbound"
        assert inbound["DKIM-Signature"] is None
        assert inbound["Authentication-Results"] is not None


# --- 2. Inbound checks -----------------------------------------------------------------------


def _rsa_key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


def test_inbound_authentication_results_and_dmarc_reject(tmp_path: Path) -> None:
    private, public = _rsa_key()
    zones = {
        "good.test": zone_text(
            '@ TXT "v=spf1 ip4:127.0.0.1 -all"\n'
            '_dmarc TXT "v=DMARC1; p=reject"\n'
            f'sel._domainkey TXT "v=DKIM1; k=rsa; p={public}"\n'),
        "strict.test": zone_text('@ TXT "v=spf1 -all"\n_dmarc TXT "v=DMARC1; p=reject"\n'),
        "lax.test": zone_text('@ TXT "v=spf1 -all"\n_dmarc TXT "v=DMARC1; p=none"\n'),
    }
    with TestDnsServer(zones) as dns, HayateServer(
        tmp_path, local_domains=("hayate.test",),
        sections=sections(dns={"nameservers": [dns.address], "timeout": 2.0}),
    ) as server:
        server.cli("user", "add", "bob@hayate.test", input=b"bob-pw-1234\n")
        port = server.ports["smtp"]
        good = message("good", "news@good.test", "bob@hayate.test")
        signed = dkim.sign(good, b"sel", b"good.test", private,
                           include_headers=[b"from", b"to", b"subject", b"date"])
        send(port, "news@good.test", ["bob@hayate.test"], signed + good)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("forger@strict.test", ["bob@hayate.test"],
                                message("forged", "ceo@strict.test", "bob@hayate.test"))
            assert refused.value.smtp_code == 550
            assert b"5.7.1" in refused.value.smtp_error
            assert b"strict.test" in refused.value.smtp_error
            # The same session goes on: the next message is accepted.
            client.sendmail("someone@lax.test", ["bob@hayate.test"],
                            message("lax", "someone@lax.test", "bob@hayate.test"))
        # ... and so do new sessions.
        send(port, "news@good.test", ["bob@hayate.test"], signed + good)
        inbox = wait_for(lambda: len(mailbox(tmp_path / "data", "bob@hayate.test")) >= 3
                         and mailbox(tmp_path / "data", "bob@hayate.test"), what="bob's mail")
    by_subject = {m["Subject"]: m for m in inbox}
    assert sorted(by_subject) == ["good", "lax"]
    assert len(inbox) == 3
    results = str(by_subject["good"]["Authentication-Results"])
    assert results.startswith("mx.hayate.test")
    assert "spf=pass" in results and "smtp.mailfrom=good.test" in results
    assert "dkim=pass" in results and "header.d=good.test" in results
    assert "dmarc=pass" in results and "header.from=good.test" in results
    lax = str(by_subject["lax"]["Authentication-Results"])
    assert "spf=fail" in lax and "dkim=none" in lax and "dmarc=fail" in lax


# --- 3. VERP, asynchronous bounces, complaints, suppression, events ---------------------------


def dsn(verp: str, recipient: str, status: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {formatdate()}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n'
        "\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
        f"I could not deliver your message to <{recipient}>.\r\n"
        "\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: User unknown\r\n"
        "\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: app@example.test\r\nTo: {recipient}\r\nSubject: hello\r\n"
        "\r\n--BB--\r\n"
    ).encode()


def arf(verp: str, recipient: str) -> bytes:
    return (
        "From: fbl@isp.example.net\r\n"
        f"To: {verp}\r\n"
        "Subject: abuse report\r\n"
        f"Date: {formatdate()}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="FF"\r\n'
        "\r\n--FF\r\nContent-Type: text/plain\r\n\r\nA user marked this as spam.\r\n"
        "\r\n--FF\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n"
        "\r\n--FF\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Return-Path: <{verp}>\r\n"
        f"From: app@example.test\r\nTo: {recipient}\r\nSubject: hello\r\n\r\nhi\r\n"
        "\r\n--FF--\r\n"
    ).encode()


def test_verp_async_bounce_complaint_suppression_and_events(tmp_path: Path) -> None:
    gone, angry = "gone@example.net", "angry@example.net"
    with smtp_sink(dump=True) as sink, HayateServer(
        tmp_path, local_domains=("example.test",), relay_networks=("127.0.0.2/32",),
        transport=[{"domain": "example.net", "nexthop": sink.address}],
        sections=sections(bounces={"domain": "bounces.example.test"},
                          auth={"enabled": False}),
    ) as server:
        port = server.ports["smtp"]
        send(port, "app@example.test", [gone, angry],
             message("hello", "app@example.test", "list@example.test"), source="127.0.0.2")
        got = sink_messages(sink, 2)
        verp = {m.recipients[0]: envelope_sender(m) for m in got}
        assert set(verp) == {gone, angry}  # one transaction per recipient under VERP
        for address in verp.values():
            local, _, domain = address.partition("@")
            assert local.startswith("b-") and domain == "bounces.example.test"
        assert verp[gone] != verp[angry]
        wait_for(lambda: "delivered" in event_kinds(server, gone), what="delivered event")

        # The remote bounces later: a DSN from outside, to the VERP address, on the MX port.
        send(port, "", [verp[gone]], dsn(verp[gone], gone, "5.1.1"))
        send(port, "", [verp[angry]], arf(verp[angry], angry))
        bounce = wait_for(
            lambda: [e for e in events(server, gone) if e["kind"] == "async-bounce"],
            what="async-bounce event")
        assert bounce[0]["bounce_kind"] == "hard" and bounce[0]["status"] == "5.1.1"
        assert bounce[0]["sender"] == "app@example.test"
        wait_for(lambda: "complained" in event_kinds(server, angry), what="complaint event")
        listed = wait_for(lambda: (s := suppressed(server)).keys() >= {gone, angry} and s,
                          what="suppression entries")
        assert listed[gone]["domain"] == "example.test"

        # New mail to them is not sent; the events say why.
        send(port, "app@example.test", [gone, angry, "ok@example.net"],
             message("again", "app@example.test", "list@example.test"), source="127.0.0.2")
        later = sink_messages(sink, 3)
        wait_for(lambda: "suppressed" in event_kinds(server, gone), what="suppressed event")
        wait_for(lambda: "suppressed" in event_kinds(server, angry), what="suppressed event")
        time.sleep(0.5)  # a message wrongly sent would have reached the sink by now
        assert len(sink.messages()) == 3
        assert later[-1].recipients == ("ok@example.net",)
        assert "delivered" in event_kinds(server, "ok@example.net")


# --- 4. A synchronous 5.1.1 at delivery -------------------------------------------------------


def test_remote_550_5_1_1_bounces_and_suppresses(tmp_path: Path) -> None:
    with HayateServer(
        tmp_path / "remote", local_domains=("example.net",), hostname="mx.example.net",
        sections={"auth": {"enabled": False}},
    ) as remote:
        remote.cli("user", "add", "alive@example.net", input=b"alive-pw-123\n")
        with HayateServer(
            tmp_path / "sender", local_domains=("example.test",),
            relay_networks=("127.0.0.0/8",),
            transport=[{"domain": "example.net",
                        "nexthop": f"127.0.0.1:{remote.ports['smtp']}"}],
            sections=sections(delivery={"tls": "none"}),
        ) as server:
            send(server.ports["smtp"], "app@example.test",
                 ["alive@example.net", "ghost@example.net"],
                 message("hi", "app@example.test", "team@example.net"))
            wait_for(lambda: mailbox(tmp_path / "remote" / "data", "alive@example.net"),
                     what="mail at the remote")
            bounced = wait_for(
                lambda: [e for e in events(server, "ghost@example.net")
                         if e["kind"] == "bounced"], what="bounced event")
            assert bounced[0]["status"] == "5.1.1"
            assert "550" in bounced[0]["reply"]
            assert "delivered" in event_kinds(server, "alive@example.net")
            listed = wait_for(lambda: suppressed(server).get("ghost@example.net"),
                              what="ghost suppressed")
            assert listed["domain"] == "example.test"
            assert "alive@example.net" not in suppressed(server)


# --- 5 + 6. Egress source, queue sites, streams -----------------------------------------------


def test_egress_source_sites_and_streams(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink:
        server = HayateServer(
            tmp_path, local_domains=("example.test",), relay_networks=("127.0.0.0/8",),
            transport=[{"domain": "example.net", "nexthop": sink.address}],
            sections=sections(auth={"enabled": False}),
        )
        append_toml(server, """
[[egress.sources]]
name = "two"
address = "127.0.0.2"
helo = "two.example.test"
""")
        with server:
            send(server.ports["smtp"], "app@example.test", ["x@example.net"],
                 message("newsletter", "app@example.test", "x@example.net",
                         extra="X-Hayate-Stream: bulk\r\n"))
            (got,) = sink_messages(sink, 1)
            rows = wait_for(
                lambda: json.loads(server.cli("queue", "sites", "--json").stdout or b"[]"),
                what="queue sites rows")
            stream = [e["stream"] for e in events(server, "x@example.net")]
        assert got.client_addr == "127.0.0.2"
        assert got.helo == "two.example.test"
        assert b"Subject: newsletter" in got.content
        assert b"x-hayate-stream" not in got.content.lower()
        assert stream and stream[-1] == "bulk"
        assert any(row["source"] == "two" and int(row.get("sent_total") or 0) >= 1
                   for row in rows), rows
