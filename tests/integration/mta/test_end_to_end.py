"""Hayate end to end: a real ``hayate serve``, real clients, real smtp-sink, real DNS.

Each test starts its own server on ports the OS picks and its own smtp-sink; nothing is
faked. The sink plays the remote MX (through a transport entry, or through MX records served
by the test DNS server with ``delivery.port`` pointing at the sink).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from pathlib import Path

import pytest
from tests.integration.mta.conftest import mailbox, send, sink_messages, wait_for
from tests.support.dnsserver import TestDnsServer, zone_text
from tests.support.hayate_server import HayateServer
from tests.support.sink import smtp_sink


def message(subject: str, sender: str = "app@hayate.test", to: str = "x@example.net") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n"
            f"Body of {subject}\r\n.starts with a dot\r\n").encode()


def queue_ids(server: HayateServer) -> list[str]:
    out = server.cli("queue", "list").stdout.decode()
    return [line.split()[0].rstrip("!") for line in out.splitlines()
            if line and not line.startswith((" ", "-", "Mail"))]


def test_relay_through_transport_reaches_the_sink(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink, HayateServer(
        tmp_path, relay_networks=("127.0.0.0/8",),
        transport=[{"domain": "*", "nexthop": sink.address}], workers=2,
    ) as server:
        send(server.ports["smtp"], "app@hayate.test", ["x@example.net", "y@example.net"],
             message("relay"))
        (got,) = sink_messages(sink, 1)
        assert set(got.recipients) == {"x@example.net", "y@example.net"}  # one transaction
        assert b"Subject: relay" in got.content
        assert b"\n.starts with a dot" in got.content  # dot-stuffing round trip
        assert b"by mx.hayate.test (Hayate) with ESMTP id" in got.content
        assert b"Message-ID: <" in got.content and b"Date: " in got.content
        assert "status=sent" in server.log()
        wait_for(lambda: queue_ids(server) == [], what="empty queue")


def test_mx_lookup_through_real_dns(tmp_path: Path) -> None:
    zones = {
        "dest.test": zone_text("@ MX 10 mx1\n@ MX 20 mx2\nmx1 A 127.0.0.1\nmx2 A 127.0.0.1\n"),
        "nullmx.test": zone_text("@ MX 0 .\n"),
    }
    with smtp_sink(dump=True) as sink, TestDnsServer(zones) as dns, HayateServer(
        tmp_path, relay_networks=("127.0.0.0/8",),
        sections={"dns": {"nameservers": [dns.address], "timeout": 2.0},
                  "delivery": {"port": sink.port}},
    ) as server:
        server.cli("user", "add", "app@hayate.test", input=b"secret-pw\n")
        send(server.ports["smtp"], "app@hayate.test", ["u@dest.test"], message("via MX"))
        (got,) = sink_messages(sink, 1)
        assert got.recipients == ("u@dest.test",)
        assert dns.count("dest.test", "MX") >= 1
        # Null MX (RFC 7505) and a domain that does not exist: permanent, DSN to the sender.
        send(server.ports["smtp"], "app@hayate.test", ["u@nullmx.test", "u@nosuch.dest.test"],
             message("nowhere"))
        data_dir = tmp_path / "data"
        dsns = wait_for(lambda: mailbox(data_dir, "app@hayate.test"), what="a DSN")
        assert isinstance(dsns, list) and len(dsns) == 1
        dsn = dsns[0]
        assert dsn.get_content_type() == "multipart/report"
        report = str(dsn)
        assert "u@nullmx.test" in report and "5.1.10" in report
        assert "u@nosuch.dest.test" in report and "5.1.2" in report


def test_local_delivery_aliases_and_unknown_users(tmp_path: Path) -> None:
    with HayateServer(tmp_path) as server:
        server.cli("user", "add", "alice@hayate.test", input=b"pw-alice-123\n")
        server.cli("user", "add", "bob@hayate.test", input=b"pw-bob-123\n")
        server.cli("alias", "add", "team@hayate.test", "alice@hayate.test", "bob@hayate.test")
        port = server.ports["smtp"]
        send(port, "someone@example.org", ["team@hayate.test"], message("team", to="team"))
        send(port, "someone@example.org", ["Alice@Hayate.test"], message("direct", to="alice"))
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.mail("someone@example.org")
            code, text = client.rcpt("nobody@hayate.test")
            assert code == 550 and b"5.1.1" in text
            code, text = client.rcpt("victim@example.net")  # the MX is no open relay
            assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
        data_dir = tmp_path / "data"
        alice = wait_for(lambda: len(mailbox(data_dir, "alice@hayate.test")) == 2 and
                         mailbox(data_dir, "alice@hayate.test"), what="alice's mail")
        assert isinstance(alice, list)
        assert sorted(m["Subject"] for m in alice) == ["direct", "team"]
        assert alice[0]["Received"] and "mx.hayate.test" in alice[0]["Received"]
        bob = mailbox(data_dir, "bob@hayate.test")
        assert [m["Subject"] for m in bob] == ["team"]


def test_submission_starttls_auth_and_sender_rules(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink, HayateServer(
        tmp_path, listeners=("smtp", "submission", "submissions"), tls=True,
        transport=[{"domain": "*", "nexthop": sink.address}],
    ) as server:
        server.cli("user", "add", "carol@hayate.test", input=b"carol-pw-42\n")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
            client.ehlo()
            with pytest.raises(smtplib.SMTPException):
                client.login("carol@hayate.test", "carol-pw-42")  # no AUTH before TLS
            client.starttls(context=ctx)
            client.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("carol@hayate.test", "wrong")
            client.login("carol@hayate.test", "carol-pw-42")
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("ceo@other.example", ["x@example.net"], message("forged"))
            assert refused.value.smtp_code == 553
            client.sendmail("carol@hayate.test", ["x@example.net"], message("from carol"))
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=ctx) as client:
            client.login("carol@hayate.test", "carol-pw-42")
            client.sendmail("carol@hayate.test", ["y@example.net"], message("implicit tls"))
        got = sink_messages(sink, 2)
        assert sorted(m.recipients[0] for m in got) == ["x@example.net", "y@example.net"]
        assert all(b"Authenticated sender: carol@hayate.test" in m.content for m in got)
        assert any(b"with ESMTPSA" in m.content for m in got)


def test_temporary_failure_is_retried_then_delivered(tmp_path: Path) -> None:
    with smtp_sink("-r", "RCPT") as refusing:
        port = refusing.port
        with HayateServer(
            tmp_path, relay_networks=("127.0.0.0/8",),
            transport=[{"domain": "*", "nexthop": f"127.0.0.1:{port}"}],
            sections={"queue": {"min_backoff": 600, "scan_interval": 0.2}},
        ) as server:
            send(server.ports["smtp"], "app@hayate.test", ["x@example.net"], message("later"))
            wait_for(lambda: "status=deferred" in server.log(), what="a deferral")
            listing = server.cli("queue", "list").stdout.decode()
            assert "x@example.net" in listing and "(4" in listing  # last reply shown
            (qid,) = queue_ids(server)
            shown = server.cli("queue", "show", qid).stdout.decode()
            assert "attempts=1" in shown and "Subject: later" in shown
            refusing.proc.terminate()
            refusing.proc.wait()
            with smtp_sink(dump=True, port=port) as accepting:
                server.cli("queue", "retry", qid)
                (got,) = sink_messages(accepting, 1)
                assert b"Subject: later" in got.content
            wait_for(lambda: queue_ids(server) == [], what="empty queue")


def test_permanent_failure_sends_dsn_to_local_sender(tmp_path: Path) -> None:
    with smtp_sink("-f", "RCPT") as refusing, HayateServer(
        tmp_path, transport=[{"domain": "example.net", "nexthop": refusing.address}],
        relay_networks=("127.0.0.0/8",),
    ) as server:
        server.cli("user", "add", "dana@hayate.test", input=b"dana-pw-7\n")
        send(server.ports["smtp"], "dana@hayate.test", ["gone@example.net"], message("bye"))
        data_dir = tmp_path / "data"
        dsns = wait_for(lambda: mailbox(data_dir, "dana@hayate.test"), what="a DSN")
        assert isinstance(dsns, list) and len(dsns) == 1
        dsn = dsns[0]
        assert dsn.get_content_type() == "multipart/report"
        assert dsn["From"].startswith("Mail Delivery System")
        parts = [p.get_content_type() for p in dsn.iter_parts()]
        assert parts[:2] == ["text/plain", "message/delivery-status"]
        text = str(dsn)
        assert "gone@example.net" in text and "Subject: bye" in text and "Status: 5." in text
        wait_for(lambda: queue_ids(server) == [], what="empty queue")
        # A bounce of the bounce would loop: the DSN (null sender) to a dead address is dropped.
        assert "status=bounced" in server.log()


def test_expired_message_bounces(tmp_path: Path) -> None:
    with HayateServer(
        tmp_path, relay_networks=("127.0.0.0/8",),
        transport=[{"domain": "example.net", "nexthop": "127.0.0.1:9"}],  # nobody listens
        sections={"queue": {"min_backoff": 0.3, "max_backoff": 0.5, "lifetime": 2.0,
                            "scan_interval": 0.1}},
    ) as server:
        server.cli("user", "add", "erin@hayate.test", input=b"erin-pw-1\n")
        send(server.ports["smtp"], "erin@hayate.test", ["late@example.net"], message("late"))
        data_dir = tmp_path / "data"
        dsns = wait_for(lambda: mailbox(data_dir, "erin@hayate.test"), timeout=15,
                        what="an expiry DSN")
        assert isinstance(dsns, list)
        text = str(dsns[0])
        assert "late@example.net" in text and "expired" in text
        assert "status=expired" in server.log()


def test_queue_hold_release_delete(tmp_path: Path) -> None:
    with HayateServer(
        tmp_path, relay_networks=("127.0.0.0/8",),
        transport=[{"domain": "*", "nexthop": "127.0.0.1:9"}],
    ) as server:
        for subject in ("one", "two"):
            send(server.ports["smtp"], "app@hayate.test", ["x@example.net"], message(subject))
        ids = wait_for(lambda: len(queue_ids(server)) == 2 and queue_ids(server))
        assert isinstance(ids, list)
        server.cli("queue", "hold", ids[0])
        listing = server.cli("queue", "list").stdout.decode()
        assert f"{ids[0]}!" in listing and "held" in listing
        server.cli("queue", "release", ids[0])
        assert f"{ids[0]}!" not in server.cli("queue", "list").stdout.decode()
        server.cli("queue", "delete", ids[1])
        assert queue_ids(server) == [ids[0]]
        missing = server.cli("queue", "show", "NOSUCHID", check=False)
        assert missing.returncode == 1 and b"no such message" in missing.stderr


def test_hayate_send_is_picked_up(tmp_path: Path) -> None:
    with HayateServer(tmp_path) as server:
        server.cli("user", "add", "frank@hayate.test", input=b"frank-pw-1\n")
        out = server.cli("send", "--from", "cron@hayate.test", "frank@hayate.test",
                         input=b"Subject: from cron\n\nnightly job done\n")
        assert b"queued as" in out.stdout
        got = wait_for(lambda: mailbox(tmp_path / "data", "frank@hayate.test"), what="pickup")
        assert isinstance(got, list) and got[0]["Subject"] == "from cron"
        assert "nightly job done" in got[0].get_content()


def test_health_and_metrics(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("smtp", "http")) as server:
        server.cli("user", "add", "gina@hayate.test", input=b"gina-pw-1\n")
        send(server.ports["smtp"], "a@example.org", ["gina@hayate.test"], message("m"))
        base = f"http://127.0.0.1:{server.ports['http']}"

        def metrics() -> str:
            with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
                return str(resp.read().decode())

        wait_for(lambda: "hayate_delivered_total 1.0" in metrics(), what="metrics")
        with urllib.request.urlopen(base + "/health", timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "ok" and body["workers"] == 1
        assert "hayate_queue_messages 0.0" in metrics()


def test_bad_config_is_a_readable_error(tmp_path: Path) -> None:
    server = HayateServer(tmp_path)
    server.config_path.write_text('hostname = "x"\n[limits]\nmax_recipients = "many"\nbogus = 1\n')
    result = server.cli("queue", "list", check=False)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "limits.max_recipients" in err and "limits.bogus: unknown key" in err
    assert "Traceback" not in err
