"""What a mail client is told to use: the servers (host, port, TLS mode) of a local domain.

Pure and shared by Thunderbird autoconfig and Outlook Autodiscover (``hayate.http.autoconfig``).

Offers, in the order a client should prefer them:

    imaps (implicit TLS)  imap (STARTTLS)  pop3s  pop3  submissions (implicit TLS)  submission

A service is offered when its ``[listen]`` key is set or ``[autoconfig]`` gives its port (the
port clients reach from outside, e.g. through a TLS proxy or port forwarding). The port is
the ``[autoconfig]`` override, else the port the listener really bound (``bound_ports``,
which matters for ``127.0.0.1:0``), else the configured one. The host is the
``[autoconfig]`` ``imap_host`` / ``pop3_host`` / ``smtp_host``, else ``hostname``. The MX
listener (port 25) is never offered: clients submit mail on 465 or 587.

Which domain a request is about (:func:`local_domain_for`): the address the client gave
(``emailaddress=``, ``EMailAddress``, ``Email=``), else the Host header the client used
(``example.com``, ``autoconfig.example.com``, ``autodiscover.example.com``). Only local
domains get an answer; anything else is "not found" and reveals nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hayate.config import Config, split_hostport

MailProtocol = Literal["imap", "pop3", "smtp"]
MAX_ADDRESS_LENGTH = 320  # RFC 3696: 64 + 1 + 255
HOST_PREFIXES = ("autoconfig.", "autodiscover.")


@dataclass(frozen=True, slots=True)
class MailServer:
    """One server a client may use. ``implicit_tls`` False means STARTTLS on a plain port."""

    listener: str  # the [listen] key: "imaps", "imap", "pop3s", "pop3", "submissions", ...
    protocol: MailProtocol
    host: str
    port: int
    implicit_tls: bool


# listener → (protocol, implicit TLS, [autoconfig] host key, [autoconfig] port key)
_LISTENERS: tuple[tuple[str, MailProtocol, bool, str, str], ...] = (
    ("imaps", "imap", True, "imap_host", "imaps_port"),
    ("imap", "imap", False, "imap_host", "imap_port"),
    ("pop3s", "pop3", True, "pop3_host", "pop3s_port"),
    ("pop3", "pop3", False, "pop3_host", "pop3_port"),
    ("submissions", "smtp", True, "smtp_host", "submissions_port"),
    ("submission", "smtp", False, "smtp_host", "submission_port"),
)


def offered_servers(cfg: Config, bound_ports: Mapping[str, int] | None = None) -> list[MailServer]:
    """Every server a client may be told about, most preferred first (see module doc)."""
    out: list[MailServer] = []
    for listener, protocol, implicit_tls, host_key, port_key in _LISTENERS:
        override: int | None = getattr(cfg.autoconfig, port_key)
        address: str | None = getattr(cfg.listen, listener)
        port: int | None = override
        if port is None and bound_ports is not None and listener in bound_ports:
            port = bound_ports[listener]
        if port is None and address is not None:
            port = split_hostport(address)[1]
        if not port:  # not configured, or "host:0" whose real port is not known here
            continue
        host = getattr(cfg.autoconfig, host_key) or cfg.hostname
        out.append(MailServer(listener, protocol, host, port, implicit_tls))
    return out


def first_of(servers: list[MailServer], protocol: MailProtocol) -> MailServer | None:
    """The preferred server of ``protocol`` (implicit TLS before STARTTLS), if any."""
    return next((s for s in servers if s.protocol == protocol), None)


def domain_of_address(address: str) -> str | None:
    """The lower-cased domain of ``local@domain``, or None when it is not such an address."""
    address = address.strip()
    if len(address) > MAX_ADDRESS_LENGTH or address.count("@") != 1:
        return None
    local, _, domain = address.partition("@")
    domain = domain.lower().rstrip(".")
    if not local or not domain or any(c.isspace() or c in "<>\"\\/" for c in address):
        return None
    return domain


def domain_of_host(host: str) -> str:
    """The domain a Host header names: port and trailing dot removed, lower-cased, without
    an ``autoconfig.`` or ``autodiscover.`` prefix."""
    name, _ = split_hostport(host.strip()[:300], 0)
    name = name.lower().rstrip(".")
    for prefix in HOST_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def local_domain_for(cfg: Config, address: str | None, host: str | None) -> str | None:
    """The local domain a client asks about, or None (see module doc). An address that is
    given decides alone: a foreign address is not answered because of the Host header."""
    if address:
        domain = domain_of_address(address)
    elif host:
        domain = domain_of_host(host)
    else:
        return None
    return domain if domain and domain in cfg.local_domains else None
