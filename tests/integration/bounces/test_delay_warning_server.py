"""A real ``hayate serve``: delay warnings that come back to a VERP address are logged and
change nothing, while one real soft bounce for the same recipient counts.

Postfix's smtp-sink is the remote MX; the reports are sent to the server's MX port like any
remote MTA would. ``soft_bounce_limit = 1`` makes the difference visible: had a warning
counted as a soft bounce, the first one would have suppressed the recipient.
"""

from __future__ import annotations

import json
import re
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from tests.integration.mta.conftest import send, sink_messages, wait_for
from tests.support.hayate_server import HayateServer
from tests.support.sink import smtp_sink

pytestmark = pytest.mark.peer

SECTIONS: dict[str, dict[str, Any]] = {
    "queue": {"scan_interval": 0.2, "min_backoff": 1.0},
    "events": {"flush_interval": 0.1},
    "suppression": {"cache_ttl": 0.2, "notify_sender": False, "soft_bounce_limit": 1},
    "bounces": {"domain": "bounces.example.test"},
    "auth": {"enabled": False},
}


def report(verp: str, recipient: str, action: str, status: str, subject: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {verp}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {formatdate()}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n'
        "\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
        f"Mail for <{recipient}> is waiting in our queue.\r\n"
        "\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 452 {status} <{recipient}>: mailbox over quota\r\n"
        "\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: app@example.test\r\nTo: {recipient}\r\nSubject: hello\r\n"
        "\r\n--BB--\r\n"
    ).encode()


def events(server: HayateServer, recipient: str) -> list[dict[str, Any]]:
    out = server.cli("events", "--recipient", recipient, "--json").stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def suppressed(server: HayateServer) -> list[str]:
    out = server.cli("suppression", "list", "--json").stdout.decode()
    return [json.loads(line)["address"] for line in out.splitlines() if line.strip()]


def test_delay_warnings_are_logged_and_never_suppress(tmp_path: Path) -> None:
    late = "late@example.net"
    with smtp_sink(dump=True) as sink, HayateServer(
        tmp_path, local_domains=("example.test",), relay_networks=("127.0.0.2/32",),
        transport=[{"domain": "example.net", "nexthop": sink.address}], sections=SECTIONS,
    ) as server:
        port = server.ports["smtp"]
        send(port, "app@example.test", [late], b"From: app@example.test\r\nTo: " +
             late.encode() + b"\r\nSubject: hello\r\n\r\nhi\r\n", source="127.0.0.2")
        [got] = sink_messages(sink, 1)
        verp = got.mail_args.split(">", 1)[0].lstrip("<")
        assert verp.startswith("b-") and verp.endswith("@bounces.example.test")
        wait_for(lambda: any(e["kind"] == "delivered" for e in events(server, late)),
                 what="delivered event")

        warning = report(verp, late, "delayed", "4.2.2",
                         "Delayed Mail (still being retried)")
        for _ in range(3):
            send(port, "", [verp], warning)
        logged = re.compile(rf"delay warning for <{re.escape(late)}> \(message \w+, 4\.2\.2\)"
                            r": no action")
        wait_for(lambda: len(logged.findall(server.log())) == 3, what="three delay log lines")
        assert [e["kind"] for e in events(server, late)] == ["delivered"]
        assert suppressed(server) == []

        # The remote gives up: the same cause in a final report is a soft bounce, and
        # with soft_bounce_limit = 1 the first one suppresses.
        send(port, "", [verp], report(verp, late, "failed", "4.2.2",
                                      "Undelivered Mail Returned to Sender"))
        bounce = wait_for(lambda: [e for e in events(server, late)
                                   if e["kind"] == "async-bounce"], what="async-bounce event")
        assert (bounce[0]["bounce_kind"], bounce[0]["reason"]) == ("soft", "mailbox-full")
        assert wait_for(lambda: suppressed(server), what="suppression entry") == [late]
