"""The Thunderbird and Autodiscover documents, read back with a namespace-aware parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hayate.http.clientxml import (
    AUTODISCOVER_RESPONSE_NS,
    OUTLOOK_RESPONSE_SCHEMA,
    autodiscover_error,
    autodiscover_settings,
    thunderbird_config,
)
from hayate.http.mailservers import MailServer

SERVERS = [
    MailServer("imaps", "imap", "mail.example.com", 993, True),
    MailServer("imap", "imap", "mail.example.com", 143, False),
    MailServer("pop3", "pop3", "pop.example.com", 110, False),
    MailServer("submissions", "smtp", "smtp.example.com", 465, True),
    MailServer("submission", "smtp", "smtp.example.com", 587, False),
]
AD = "{" + AUTODISCOVER_RESPONSE_NS + "}"
OL = "{" + OUTLOOK_RESPONSE_SCHEMA + "}"


def test_thunderbird_config_lists_servers_in_order_with_their_tls_mode() -> None:
    doc = thunderbird_config("example.com", "", SERVERS)
    assert doc.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = ET.fromstring(doc)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None and provider.get("id") == "example.com"
    assert provider.findtext("domain") == "example.com"
    assert provider.findtext("displayName") == "example.com"
    assert provider.findtext("displayShortName") == "example"
    incoming = [(s.get("type"), s.findtext("hostname"), s.findtext("port"),
                 s.findtext("socketType")) for s in provider.findall("incomingServer")]
    assert incoming == [("imap", "mail.example.com", "993", "SSL"),
                        ("imap", "mail.example.com", "143", "STARTTLS"),
                        ("pop3", "pop.example.com", "110", "STARTTLS")]
    outgoing = [(s.get("type"), s.findtext("port"), s.findtext("socketType"))
                for s in provider.findall("outgoingServer")]
    assert outgoing == [("smtp", "465", "SSL"), ("smtp", "587", "STARTTLS")]
    for server in provider.findall("*[@type]"):
        assert server.findtext("username") == "%EMAILADDRESS%"
        assert server.findtext("authentication") == "password-cleartext"


def test_markup_in_a_display_name_stays_text() -> None:
    name = 'Ex & Co <b>"mail"</b>'
    root = ET.fromstring(thunderbird_config("example.com", name, SERVERS[:1]))
    assert root.findtext("emailProvider/displayName") == name
    assert root.find("emailProvider/displayName/b") is None


def test_autodiscover_answer_has_one_protocol_per_type() -> None:
    root = ET.fromstring(autodiscover_settings("alice@example.com", SERVERS))
    assert root.tag == AD + "Autodiscover"
    account = root.find(f"{OL}Response/{OL}Account")
    assert account is not None
    assert account.findtext(OL + "AccountType") == "email"
    assert account.findtext(OL + "Action") == "settings"
    protocols = {p.findtext(OL + "Type"): p for p in account.findall(OL + "Protocol")}
    assert list(protocols) == ["IMAP", "POP3", "SMTP"]
    imap, pop3, smtp = protocols["IMAP"], protocols["POP3"], protocols["SMTP"]
    assert (imap.findtext(OL + "Server"), imap.findtext(OL + "Port")) == ("mail.example.com", "993")
    assert imap.findtext(OL + "SSL") == "on" and imap.find(OL + "Encryption") is None
    assert (pop3.findtext(OL + "Port"), pop3.findtext(OL + "Encryption")) == ("110", "TLS")
    assert smtp.findtext(OL + "Port") == "465"
    for p in protocols.values():
        assert p.findtext(OL + "LoginName") == "alice@example.com"
        assert p.findtext(OL + "SPA") == "off"
        assert p.findtext(OL + "DomainRequired") == "off"
        assert p.findtext(OL + "AuthRequired") == "on"


def test_autodiscover_error_document() -> None:
    root = ET.fromstring(autodiscover_error(600, "Invalid Request"))
    error = root.find(f"{AD}Response/{AD}Error")
    assert error is not None
    assert error.findtext(AD + "ErrorCode") == "600"
    assert error.findtext(AD + "Message") == "Invalid Request"
