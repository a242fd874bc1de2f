"""What a DNS check is about, and the seams it calls: the inputs of every check.

:class:`CheckTarget` is built by the command from the config and the DKIM key store (the
domain, this server's host name, its egress sources and the keys to expect), so the checks
themselves read no files. One callable comes from outside: the MTA-STS policy fetcher
(:func:`hayate.dnscheck.policyfetch.fetch_policy` bound to a port and CA file).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hayate.core.seams import DnsError, TxtResolver
from hayate.dnscheck.policyfetch import PolicyResponse
from hayate.dnscheck.results import Record


@dataclass(frozen=True, slots=True)
class SendingIp:
    """An address mail leaves from, with the EHLO name it uses there."""

    address: str
    helo: str
    source: str  # egress source name, or "hostname" when taken from the host's A/AAAA


@dataclass(frozen=True, slots=True)
class DkimKeyInfo:
    """One key of the key store: its state and the TXT record the store says to publish."""

    selector: str
    state: str  # "active" | "published" | "retired"
    record: Record


@dataclass(frozen=True, slots=True)
class CheckTarget:
    domain: str  # lower case, no final dot
    hostname: str  # this server's name (config ``hostname``): MX target and default HELO
    local: bool  # mail for the domain is received here (the MX must point here)
    egress: tuple[SendingIp, ...] = ()  # configured source addresses; () = the host's A/AAAA
    dkim_keys: tuple[DkimKeyInfo, ...] = ()
    dkim_error: str = ""  # the key store could not be read: why
    sts_id: str = "1"  # the id= to suggest for a new _mta-sts record (a timestamp)


PolicyFetcher = Callable[[str], Awaitable[PolicyResponse]]  # domain → the fetched policy


async def txt_or_empty(resolver: TxtResolver, name: str) -> list[str]:
    """TXT records of ``name``; [] for NXDOMAIN too. Temporary failures still raise."""
    try:
        return await resolver.resolve_txt(name)
    except DnsError as exc:
        if exc.temporary:
            raise
        return []


async def versioned_txt(resolver: TxtResolver, name: str, version: str) -> list[str]:
    """The TXT records of ``name`` (stripped) that start with ``version`` ("v=DMARC1"),
    compared without regard to case; [] for NXDOMAIN. Temporary failures still raise."""
    prefix = version.lower()
    return [
        t.strip() for t in await txt_or_empty(resolver, name)
        if t.strip().lower().startswith(prefix)
    ]


def norm_host(name: str) -> str:
    return name.strip().lower().rstrip(".")
