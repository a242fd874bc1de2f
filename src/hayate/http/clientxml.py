"""The documents mail clients read to configure themselves, built with ElementTree.

* :func:`thunderbird_config`: Thunderbird's ``clientConfig`` version 1.1 (also read by
  K-9/Thunderbird for Android, Evolution, KMail, FairEmail): one ``emailProvider`` for a
  domain, ``incomingServer`` entries (IMAP, POP3) and ``outgoingServer`` entries (SMTP)
  in the order of preference, each with ``socketType`` SSL (implicit TLS) or STARTTLS,
  ``password-cleartext`` authentication (safe: only over TLS) and the whole address as the
  user name.
* :func:`autodiscover_settings` / :func:`autodiscover_error`: Outlook's "POX" Autodiscover
  answer (response schema 2006a) with one ``Protocol`` per type (IMAP, POP3, SMTP), or an
  ``Error`` response.

Every value is set as element text or attribute value, so ElementTree escapes it; nothing
is ever concatenated into markup.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from hayate.http.mailservers import MailServer, first_of

AUTODISCOVER_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_RESPONSE_SCHEMA = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

# Autodiscover error codes (Exchange's POX protocol)
ERROR_NOT_FOUND = 500  # the e-mail address cannot be found
ERROR_INVALID_REQUEST = 600
ERROR_SCHEMA_NOT_AVAILABLE = 601


def _text(parent: ET.Element, tag: str, value: str | int) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(value)
    return element


def _document(root: ET.Element) -> bytes:
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"


def thunderbird_config(domain: str, display_name: str, servers: list[MailServer]) -> bytes:
    """``config-v1.1.xml`` for ``domain``; ``display_name`` empty means the domain."""
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    _text(provider, "domain", domain)
    _text(provider, "displayName", display_name or domain)
    _text(provider, "displayShortName", display_name or domain.split(".")[0])
    incoming = [s for s in servers if s.protocol != "smtp"]
    outgoing = [s for s in servers if s.protocol == "smtp"]
    for tag, group in (("incomingServer", incoming), ("outgoingServer", outgoing)):
        for server in group:
            element = ET.SubElement(provider, tag, type=server.protocol)
            _text(element, "hostname", server.host)
            _text(element, "port", server.port)
            _text(element, "socketType", "SSL" if server.implicit_tls else "STARTTLS")
            _text(element, "authentication", "password-cleartext")
            _text(element, "username", "%EMAILADDRESS%")
    return _document(root)


def autodiscover_settings(address: str, servers: list[MailServer]) -> bytes:
    """The POX answer for ``address``: its IMAP, POP3 and SMTP settings."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE_NS)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_RESPONSE_SCHEMA)
    account = ET.SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")
    for kind in ("imap", "pop3", "smtp"):
        server = first_of(servers, kind)
        if server is None:
            continue
        protocol = ET.SubElement(account, "Protocol")
        _text(protocol, "Type", kind.upper())
        _text(protocol, "Server", server.host)
        _text(protocol, "Port", server.port)
        _text(protocol, "DomainRequired", "off")
        _text(protocol, "LoginName", address)
        _text(protocol, "SPA", "off")
        _text(protocol, "SSL", "on")
        if not server.implicit_tls:
            # Outlook 2010 and later: "TLS" means STARTTLS; it takes precedence over SSL.
            _text(protocol, "Encryption", "TLS")
        _text(protocol, "AuthRequired", "on")
        if kind == "smtp":
            _text(protocol, "UsePOPAuth", "on")
            _text(protocol, "SMTPLast", "off")
    return _document(root)


def autodiscover_error(code: int, message: str) -> bytes:
    """An ``Error`` response (``code`` one of the ERROR_* values)."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE_NS)
    response = ET.SubElement(root, "Response")
    error = ET.SubElement(
        response, "Error", Time=time.strftime("%H:%M:%S", time.gmtime()), Id="0"
    )
    _text(error, "ErrorCode", code)
    _text(error, "Message", message)
    ET.SubElement(error, "DebugData")
    return _document(root)
