"""The test DNS server itself, seen from independent clients: dig and raw dnspython queries."""

from __future__ import annotations

import shutil
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from tests.support.dnsserver import TestDnsServer

from hayate.dns import CachingResolver


def _ask(server: TestDnsServer, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, server.host, port=server.port, timeout=2)
    return dns.query.udp(query, server.host, port=server.port, timeout=2)


def _dig(server: TestDnsServer, *args: str) -> str:
    dig = shutil.which("dig")
    if dig is None:
        pytest.skip("dig (dnsutils) is not installed")
    command = [dig, "@127.0.0.1", "-p", str(server.port), "+short", "+tries=1", "+time=2"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


def test_dig_sees_the_same_mx_answer(dns_server: TestDnsServer) -> None:
    over_udp = _dig(dns_server, "example.test", "MX")
    assert sorted(over_udp.lower().splitlines()) == [
        "10 mx1.example.test.",
        "20 mx2.example.test.",
        "30 upper.example.test.",
    ]
    assert sorted(_dig(dns_server, "+tcp", "example.test", "MX").splitlines()) == sorted(
        over_udp.splitlines()
    )


async def test_dig_and_resolver_agree(dns_server: TestDnsServer, resolver: CachingResolver) -> None:
    from_dig = sorted(
        (int(pref), host.rstrip(".").lower())
        for pref, host in (
            line.split() for line in _dig(dns_server, "example.test", "MX").splitlines()
        )
    )
    answer = await resolver.resolve_mx("example.test")
    assert [(h.preference, h.host) for h in answer.hosts] == from_dig


@pytest.mark.parametrize("tcp", [False, True])
def test_authoritative_answer(dns_server: TestDnsServer, tcp: bool) -> None:
    reply = _ask(dns_server, "mx1.example.test", "A", tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert [rd.to_text() for rd in reply.answer[0]] == ["192.0.2.1"]


def test_nxdomain_carries_the_soa(dns_server: TestDnsServer) -> None:
    reply = _ask(dns_server, "nosuch.example.test", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert reply.answer == []
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    assert reply.authority[0].ttl == 60  # min(SOA TTL 60, SOA minimum 120)


def test_nodata_for_existing_name_without_the_type(dns_server: TestDnsServer) -> None:
    reply = _ask(dns_server, "mx1.example.test", "MX")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_chased_across_served_zones(dns_server: TestDnsServer) -> None:
    reply = _ask(dns_server, "alias.cname.test", "A")
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert reply.answer[1].name.to_text() == "mx1.example.test."


def test_refused_outside_its_zones(dns_server: TestDnsServer) -> None:
    reply = _ask(dns_server, "example.org", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


def test_switches_servfail_and_silence(dns_server: TestDnsServer) -> None:
    assert _ask(dns_server, "broken.test", "MX").rcode() == dns.rcode.SERVFAIL
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(
            dns.message.make_query("slow.test", "MX"),
            "127.0.0.1",
            port=dns_server.port,
            timeout=0.3,
        )
    dns_server.servfail.clear()
    assert _ask(dns_server, "broken.test", "MX").rcode() == dns.rcode.NOERROR
    assert dns_server.count("broken.test") == 2 and dns_server.count("slow.test") == 1


def test_set_zone_replaces_a_zone_while_running(dns_server: TestDnsServer) -> None:
    dns_server.set_zone("new.test", "$TTL 5\n@ SOA ns h 1 1 1 1 5\n@ NS ns\n@ A 192.0.2.99")
    reply = _ask(dns_server, "new.test", "A")
    assert [rd.to_text() for rd in reply.answer[0]] == ["192.0.2.99"]
    dns_server.remove_zone("new.test")
    assert _ask(dns_server, "new.test", "A").rcode() == dns.rcode.REFUSED
