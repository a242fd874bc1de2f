"""Pure conversions between dnspython's names and records and the values Hayate hands out.

:class:`Outcome` is what the resolver caches for one (name, type) question: the records
already turned into plain values (so a cache hit costs no parsing) or an error. The helpers
parse what operators and mail addresses give us: domain names, IP literals ("192.0.2.1",
"[IPv6:2001:db8::1]") and nameserver specs ("ip" or "ip:port"). No I/O.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.mxbase
import dns.rdtypes.nsbase
import dns.rdtypes.txtbase

from hayate.core.seams import DnsError, MxHost


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question's answer: values (none at all = NODATA) or an error message."""

    values: tuple[str, ...] = ()  # addresses, TXT strings or PTR host names
    mx: tuple[MxHost, ...] = ()  # sorted by preference; equal ones not yet shuffled
    null_mx: bool = False  # the MX set was only "." (RFC 7505)
    mx_ties: bool = False  # some MX hosts share a preference
    error: str = ""
    temporary: bool = False

    @property
    def empty(self) -> bool:
        return not (self.values or self.mx or self.null_mx)

    def check(self) -> None:
        """Raise the error this outcome carries, if any."""
        if self.error:
            raise DnsError(self.error, temporary=self.temporary)


def digest(records: Iterable[dns.rdata.Rdata]) -> Outcome:
    """Turn the records of one RRset (A, AAAA, MX, TXT or PTR) into an :class:`Outcome`."""
    values: list[str] = []
    hosts: list[MxHost] = []
    null = False
    for rd in records:
        if isinstance(rd, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA):
            values.append(str(rd.address))
        elif isinstance(rd, dns.rdtypes.mxbase.MXBase):
            if rd.exchange == dns.name.root:
                null = True
            else:
                hosts.append(MxHost(rd.preference, host_text(rd.exchange)))
        elif isinstance(rd, dns.rdtypes.txtbase.TXTBase):
            values.append(b"".join(rd.strings).decode("utf-8", "replace"))
        elif isinstance(rd, dns.rdtypes.nsbase.NSBase):  # PTR (and NS, CNAME)
            values.append(host_text(rd.target))
    hosts.sort(key=lambda h: h.preference)
    ties = len({h.preference for h in hosts}) < len(hosts)
    # A null MX mixed with real hosts is a broken zone; the real hosts win.
    return Outcome(tuple(values), tuple(hosts), null and not hosts, ties)


def host_text(name: dns.name.Name) -> str:
    """Lower case, no trailing dot (IDNs stay in their xn-- form)."""
    return name.to_text(omit_final_dot=True).lower()


@functools.lru_cache(maxsize=4096)  # parsing costs more than a cache hit
def parse_name(text: str) -> tuple[dns.name.Name, str]:
    """An absolute DNS name and its display form; a bad name is a permanent DnsError."""
    display = text.strip().rstrip(".").lower()
    if not display:
        raise DnsError("empty domain name", temporary=False)
    try:
        name = dns.name.from_text(display)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise DnsError(f"{text!r} is not a valid domain name: {exc}", temporary=False) from exc
    return name, display


def address_literal(host: str) -> str | None:
    """The IP address if ``host`` is one ("192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]")."""
    text = host.strip()
    if text[-1:].isalpha() and ":" not in text:
        return None  # a host name (top-level domains end in a letter): skip the slow parse
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """ "192.0.2.1", "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353" → a nameserver."""
    text = spec.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"bad nameserver {spec!r}: expected '[ip]:port'")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"bad nameserver {spec!r}: expected 'ip:port'")
        port = int(port_text)
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"bad nameserver {spec!r}: not an IP address") from exc
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver {spec!r}: port out of range")
    return dns.nameserver.Do53Nameserver(str(ip), port)
