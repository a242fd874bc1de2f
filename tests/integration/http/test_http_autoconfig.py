"""Thunderbird autoconfig and Outlook Autodiscover through a real ``hayate serve``, fetched
with curl and read back as a client would."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.http.conftest import (
    curl,
    free_ports,
    listen_on,
    wait_until_healthy,
)
from tests.support.hayate_server import HayateServer

from hayate.http.clientxml import AUTODISCOVER_RESPONSE_NS, OUTLOOK_RESPONSE_SCHEMA

MAIL_LISTENERS = ("imap", "imaps", "pop3s", "submission", "submissions")
AD = "{" + AUTODISCOVER_RESPONSE_NS + "}"
OL = "{" + OUTLOOK_RESPONSE_SCHEMA + "}"
REQUEST_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"


def autodiscover_request(address: str, schema: str = OUTLOOK_RESPONSE_SCHEMA) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{REQUEST_SCHEMA}">'
            f"<Request><EMailAddress>{address}</EMailAddress>"
            f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request>"
            "</Autodiscover>").encode()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HayateServer, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("autoconfig")
    ports = dict(zip(MAIL_LISTENERS, free_ports(len(MAIL_LISTENERS)), strict=True))
    server = HayateServer(
        folder, listeners=("http", "smtp"), tls=True, hostname="mail.hayate.test",
        local_domains=("hayate.test", "example.org"),
        sections={"listen": listen_on(list(ports), list(ports.values())),
                  "autoconfig": {"display_name": "Hayate Test Mail"}},
    )
    with server:
        wait_until_healthy(server.ports["http"], folder)
        yield server, ports


def test_thunderbird_gets_every_server_with_its_real_port(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path
) -> None:
    server, ports = served
    base = f"http://127.0.0.1:{server.ports['http']}"
    got = curl(f"{base}/.well-known/autoconfig/mail/config-v1.1.xml"
               "?emailaddress=alice%40hayate.test", folder=tmp_path)
    assert got.status == 200 and got.content_type.startswith("application/xml")
    provider = ET.fromstring(got.body).find("emailProvider")
    assert provider is not None and provider.get("id") == "hayate.test"
    assert provider.findtext("displayName") == "Hayate Test Mail"
    incoming = [(s.get("type"), s.findtext("hostname"), int(s.findtext("port") or 0),
                 s.findtext("socketType")) for s in provider.findall("incomingServer")]
    assert incoming == [
        ("imap", "mail.hayate.test", ports["imaps"], "SSL"),
        ("imap", "mail.hayate.test", ports["imap"], "STARTTLS"),
        ("pop3", "mail.hayate.test", ports["pop3s"], "SSL"),
    ]
    outgoing = [(int(s.findtext("port") or 0), s.findtext("socketType"))
                for s in provider.findall("outgoingServer")]
    assert outgoing == [(ports["submissions"], "SSL"), (ports["submission"], "STARTTLS")]
    assert {s.findtext("username") for s in provider.findall("*[@type]")} == {"%EMAILADDRESS%"}
    # The SMTP MX port is never offered to clients.
    assert str(server.ports["smtp"]).encode() not in got.body


def test_autoconfig_host_names_the_domain_and_foreign_domains_get_nothing(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path
) -> None:
    server, _ = served
    base = f"http://127.0.0.1:{server.ports['http']}"
    got = curl(f"{base}/mail/config-v1.1.xml", "-H", "Host: autoconfig.example.org",
               folder=tmp_path)
    assert got.status == 200
    assert ET.fromstring(got.body).find("emailProvider").get("id") == "example.org"  # type: ignore[union-attr]
    for url, host in (
        (f"{base}/mail/config-v1.1.xml?emailaddress=eve%40evil.test", "autoconfig.hayate.test"),
        (f"{base}/mail/config-v1.1.xml", "autoconfig.evil.test"),
        (f"{base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=junk", "hayate.test"),
    ):
        got = curl(url, "-H", f"Host: {host}", folder=tmp_path)
        assert got.status == 404, url
        assert b"hayate" not in got.body and b"<" not in got.body


def test_outlook_autodiscover_pox(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path
) -> None:
    server, ports = served
    base = f"http://127.0.0.1:{server.ports['http']}"
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        got = curl(f"{base}{path}", "-H", "Content-Type: text/xml",
                   body=autodiscover_request("Bob@Hayate.Test"), folder=tmp_path)
        assert got.status == 200, got.body
        account = ET.fromstring(got.body).find(f"{OL}Response/{OL}Account")
        assert account is not None and account.findtext(OL + "Action") == "settings"
        protocols = {p.findtext(OL + "Type", ""): p for p in account.findall(OL + "Protocol")}
        assert list(protocols) == ["IMAP", "POP3", "SMTP"]
        assert int(protocols["IMAP"].findtext(OL + "Port") or 0) == ports["imaps"]
        assert int(protocols["POP3"].findtext(OL + "Port") or 0) == ports["pop3s"]
        assert int(protocols["SMTP"].findtext(OL + "Port") or 0) == ports["submissions"]
        for p in protocols.values():
            assert p.findtext(OL + "Server") == "mail.hayate.test"
            assert p.findtext(OL + "LoginName") == "bob@hayate.test"
            assert (p.findtext(OL + "SSL"), p.findtext(OL + "SPA")) == ("on", "off")
            assert p.findtext(OL + "AuthRequired") == "on"


@pytest.mark.parametrize(
    ("body", "status", "error_code"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
         b'"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Autodiscover>&lol2;</Autodiscover>',
         400, "600"),
        (b"<Autodiscover><Request><EMailAddress>x@hayate.test</Request>", 400, "600"),
        (b"<Autodiscover><Request/></Autodiscover>", 400, "600"),
        (b"<Autodiscover>" + b"<x>" + b"y" * 100_000 + b"</x></Autodiscover>", 400, "600"),
        (autodiscover_request("a@hayate.test", "http://schemas.microsoft.com/exchange/"
                              "autodiscover/mobilesync/responseschema/2006"), 400, "601"),
        (autodiscover_request("eve@evil.test"), 404, "500"),
    ],
    ids=["doctype", "not-well-formed", "no-address", "huge", "other-schema", "foreign"],
)
def test_bad_autodiscover_requests_get_an_error_response(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path,
    body: bytes, status: int, error_code: str,
) -> None:
    server, _ = served
    got = curl(f"http://127.0.0.1:{server.ports['http']}/autodiscover/autodiscover.xml",
               "-H", "Content-Type: text/xml", body=body, folder=tmp_path)
    assert got.status == status
    error = ET.fromstring(got.body).find(f"{AD}Response/{AD}Error")
    assert error is not None and error.findtext(AD + "ErrorCode") == error_code
    assert b"mail.hayate.test" not in got.body
    # The server is still fine afterwards.
    assert curl(f"http://127.0.0.1:{server.ports['http']}/health", folder=tmp_path).status == 200


def test_autodiscover_json_points_at_the_pox_endpoint(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path
) -> None:
    server, _ = served
    base = f"http://127.0.0.1:{server.ports['http']}/autodiscover/autodiscover.json"
    got = curl(f"{base}?Email=alice%40hayate.test&Protocol=AutodiscoverV1", folder=tmp_path)
    assert got.status == 200
    assert json.loads(got.body) == {
        "Protocol": "AutodiscoverV1",
        "Url": "https://autodiscover.hayate.test/autodiscover/autodiscover.xml"}
    got = curl(f"{base}/v1.0/alice@example.org?Protocol=AutodiscoverV1", folder=tmp_path)
    assert json.loads(got.body)["Url"].startswith("https://autodiscover.example.org/")
    got = curl(f"{base}/v1.0/alice@hayate.test?Protocol=ActiveSync", folder=tmp_path)
    assert got.status == 400 and json.loads(got.body)["ErrorCode"] == "ProtocolNotSupported"
    assert curl(f"{base}?Email=eve%40evil.test", folder=tmp_path).status == 404


def test_metrics_still_served(
    served: tuple[HayateServer, dict[str, int]], tmp_path: Path
) -> None:
    server, _ = served
    got = curl(f"http://127.0.0.1:{server.ports['http']}/metrics", folder=tmp_path)
    assert got.status == 200 and b"hayate_workers 1.0" in got.body


def test_autoconfig_off_and_overrides(tmp_path: Path) -> None:
    """Without IMAP/POP3 listeners, [autoconfig] ports announce servers reached from outside;
    with enabled = false nothing is answered."""
    (submission,) = free_ports(1)
    sections: dict[str, dict[str, Any]] = {
        "autoconfig": {"imap_host": "imap.example.net", "imaps_port": 993,
                       "smtp_host": "smtp.example.net", "submissions_port": 465},
        "listen": listen_on(["submission"], [submission]),
    }
    with HayateServer(tmp_path / "on", listeners=("http",), tls=True,
                      sections=sections) as server:
        base = f"http://127.0.0.1:{server.ports['http']}"
        got = curl(f"{base}/mail/config-v1.1.xml?emailaddress=a%40hayate.test", folder=tmp_path)
        provider = ET.fromstring(got.body).find("emailProvider")
        assert provider is not None
        servers = [(s.tag, s.findtext("hostname"), int(s.findtext("port") or 0))
                   for s in provider.findall("*[@type]")]
        assert servers == [("incomingServer", "imap.example.net", 993),
                           ("outgoingServer", "smtp.example.net", 465),
                           ("outgoingServer", "smtp.example.net", submission)]
    with HayateServer(tmp_path / "off", listeners=("http",),
                      sections={"autoconfig": {"enabled": False}}) as server:
        base = f"http://127.0.0.1:{server.ports['http']}"
        got = curl(f"{base}/mail/config-v1.1.xml?emailaddress=a%40hayate.test", folder=tmp_path)
        assert got.status == 404
        got = curl(f"{base}/autodiscover/autodiscover.xml",
                   body=autodiscover_request("a@hayate.test"), folder=tmp_path)
        assert got.status in (404, 405)
