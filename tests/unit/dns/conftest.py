"""Fixtures for the DNS tests: a real DNS server on 127.0.0.1 with test zones, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.clock import FakeClock, clock
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.dns import CachingResolver

__all__ = ["FakeClock", "clock", "dns_server", "resolver"]

ZONES = {
    "example.test": zone_text(
        """
@        MX   10 mx1
@        MX   20 mx2
@        MX   30 Upper.Example.Test.
@        TXT  "v=spf1 ip4:192.0.2.0/24 -all"
mx1      A    192.0.2.1
mx2      A    192.0.2.2
mx2      AAAA 2001:db8::2
upper    A    192.0.2.3
v6only   AAAA 2001:db8::6
_dmarc   TXT  "v=DMARC1; p=reject"
sel._domainkey TXT "v=DKIM1; k=rsa; " "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"
""",
        ttl=60,
        negative_ttl=120,
    ),
    "equal.test": zone_text(
        """
@  MX 5  first
@  MX 10 a
@  MX 10 b
@  MX 10 c
@  MX 10 d
@  MX 20 last
"""
    ),
    "nullmx.test": zone_text("@ MX 0 ."),
    "implicit.test": zone_text("@ A 192.0.2.10"),
    "nodata.test": zone_text('@ TXT "no mail here"'),
    "cname.test": zone_text("@ MX 10 alias\nalias CNAME mx1.example.test."),
    "iplit.test": zone_text("@ MX 10 192.0.2.55."),
    "slow.test": zone_text("@ MX 10 mx1.example.test."),
    "broken.test": zone_text("@ MX 10 mx1.example.test."),
    "2.0.192.in-addr.arpa": zone_text("1 PTR mx1.example.test.\n2 PTR MX2.Example.Test."),
}


@pytest.fixture
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer(ZONES, no_answer={"slow.test"}, servfail={"broken.test"}) as server:
        yield server


@pytest.fixture
def resolver(dns_server: TestDnsServer, clock: FakeClock) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=0.5, clock=clock)
