"""Routing decisions and the headers ingest adds."""

from __future__ import annotations

from hayate.config import TransportRule
from hayate.core.envelope import Listener, SessionInfo
from hayate.ingest.headers import add_missing_headers, received_header
from hayate.ingest.routing import Router


def make_router() -> Router:
    return Router(
        ["hayate.test"],
        [
            TransportRule(domain="example.net", nexthop="127.0.0.1:2526"),
            TransportRule(domain=".corp.example", nexthop="10.0.0.1:25"),
        ],
    )


def test_local_domain_routes_to_mailbox() -> None:
    r = make_router().route("Alice@Hayate.Test")
    assert (r.route, r.destination, r.nexthop) == ("local", "local", None)


def test_transport_exact_and_subdomain_and_mx() -> None:
    router = make_router()
    assert router.route("bob@example.net").nexthop == "127.0.0.1:2526"
    assert router.route("bob@a.b.corp.example").nexthop == "10.0.0.1:25"
    assert router.route("bob@corp.example").nexthop is None  # ".corp.example" is subdomains only
    other = router.route("bob@Gmail.com")
    assert (other.route, other.destination, other.nexthop) == ("remote", "gmail.com", None)


def test_wildcard_transport() -> None:
    router = Router([], [TransportRule(domain="*", nexthop="relay:25")])
    assert router.route("x@anything.example").destination == "relay:25"


SESSION = SessionInfo(Listener.SUBMISSION, "192.0.2.7", helo="client.example",
                      tls_version="TLSv1.3", tls_cipher="TLS_AES_256_GCM_SHA384",
                      auth_user="alice@hayate.test")


def test_received_header_names_client_tls_and_auth() -> None:
    line = received_header(SESSION, "mx.hayate.test", "QID1", ("bob@example.net",), 0.0)
    text = line.decode()
    assert text.startswith("Received: from client.example ([192.0.2.7])")
    assert "with ESMTPSA id QID1" in text
    assert "Authenticated sender: alice@hayate.test" in text
    assert "for <bob@example.net>" in text
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")


def test_missing_message_id_and_date_are_added_once() -> None:
    data = b"From: a@x\r\nSubject: hi\r\n\r\nbody\r\n"
    out, hops = add_missing_headers(data, b"Received: x\r\n", "QID", "mx.test", 0.0)
    assert out.startswith(b"Received: x\r\nFrom: a@x\r\nSubject: hi\r\n")
    assert b"Message-ID: <QID@mx.test>\r\n" in out
    assert b"\r\nDate: " in out
    assert out.endswith(b"\r\n\r\nbody\r\n")
    assert hops == 1
    again, _ = add_missing_headers(out, b"", "Q2", "mx.test", 0.0)
    assert again.count(b"Message-ID:") == 1 and again.count(b"\r\nDate:") == 1


def test_existing_headers_kept_and_hops_counted() -> None:
    data = (b"Received: from a\r\nreceived: from b\r\nMessage-Id: <m@x>\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nReceived: not a header\r\n")
    out, hops = add_missing_headers(data, b"Received: new\r\n", "Q", "h", 0.0)
    assert out == b"Received: new\r\n" + data
    assert hops == 3


def test_headers_only_message_without_final_crlf() -> None:
    out, _ = add_missing_headers(b"Subject: x", b"", "Q", "h", 0.0)
    assert out.startswith(b"Subject: x\r\nMessage-ID: <Q@h>\r\nDate: ")
