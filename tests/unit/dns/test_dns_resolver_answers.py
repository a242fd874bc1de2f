"""CachingResolver against a real DNS server on 127.0.0.1: what each kind of answer becomes."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from tests.support.dnsserver import TestDnsServer

from hayate.core.seams import DnsError, MxHost
from hayate.dns import CacheStats, CachingResolver, parse_nameserver


async def test_mx_hosts_sorted_by_preference_lower_case_without_dot(
    resolver: CachingResolver,
) -> None:
    answer = await resolver.resolve_mx("Example.Test.")
    assert answer.domain == "example.test"
    assert answer.hosts == (
        MxHost(10, "mx1.example.test"),
        MxHost(20, "mx2.example.test"),
        MxHost(30, "upper.example.test"),
    )
    assert not answer.null_mx and not answer.implicit


async def test_equal_preferences_come_in_random_order(resolver: CachingResolver) -> None:
    orders = set()
    for _ in range(40):
        answer = await resolver.resolve_mx("equal.test")
        hosts = [h.host.split(".")[0] for h in answer.hosts]
        assert hosts[0] == "first" and hosts[-1] == "last"  # preference still rules
        assert sorted(hosts[1:5]) == ["a", "b", "c", "d"]
        orders.add(tuple(hosts))
    assert len(orders) > 1  # 40 identical shuffles of 4 hosts: about 1 in 10^54


async def test_null_mx(resolver: CachingResolver) -> None:
    answer = await resolver.resolve_mx("nullmx.test")
    assert answer.null_mx
    assert answer.hosts == ()


async def test_implicit_mx_when_only_an_a_record(resolver: CachingResolver) -> None:
    answer = await resolver.resolve_mx("implicit.test")
    assert answer.implicit
    assert answer.hosts == (MxHost(0, "implicit.test"),)
    assert await resolver.resolve_addresses("implicit.test") == ["192.0.2.10"]


async def test_nxdomain_is_permanent(resolver: CachingResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("nosuch.example.test")
    assert info.value.temporary is False
    assert "NXDOMAIN" in str(info.value)


async def test_no_mx_and_no_address_is_permanent(resolver: CachingResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("nodata.test")
    assert info.value.temporary is False
    assert "no MX and no A/AAAA" in str(info.value)


async def test_timeout_is_temporary_and_bounded(resolver: CachingResolver) -> None:
    started = time.monotonic()
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("slow.test")
    elapsed = time.monotonic() - started
    assert info.value.temporary is True
    assert "timed out" in str(info.value)
    assert 0.4 < elapsed < 2.0  # the 0.5 s timeout, not the default 5 s


async def test_servfail_is_temporary(resolver: CachingResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("broken.test")
    assert info.value.temporary is True
    assert "SERVFAIL" in str(info.value)


async def test_refused_outside_served_zones_is_temporary(resolver: CachingResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("example.org")
    assert info.value.temporary is True


async def test_unreachable_nameserver_is_temporary() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    resolver = CachingResolver([f"127.0.0.1:{port}"], timeout=0.5)
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("example.test")
    assert info.value.temporary is True


async def test_addresses_ipv4_first_then_ipv6(resolver: CachingResolver) -> None:
    assert await resolver.resolve_addresses("mx2.example.test") == ["192.0.2.2", "2001:db8::2"]
    assert await resolver.resolve_addresses("mx1.example.test") == ["192.0.2.1"]
    assert await resolver.resolve_addresses("v6only.example.test") == ["2001:db8::6"]


async def test_addresses_errors(resolver: CachingResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.resolve_addresses("nosuch.example.test")
    assert info.value.temporary is False
    with pytest.raises(DnsError) as info:
        await resolver.resolve_addresses("nodata.test")
    assert info.value.temporary is False
    with pytest.raises(DnsError) as info:
        await resolver.resolve_addresses("broken.test")
    assert info.value.temporary is True


async def test_ip_literals_need_no_lookup(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    assert await resolver.resolve_addresses("192.0.2.9") == ["192.0.2.9"]
    assert await resolver.resolve_addresses("[192.0.2.9]") == ["192.0.2.9"]
    assert await resolver.resolve_addresses("[IPv6:2001:DB8::1]") == ["2001:db8::1"]
    assert await resolver.resolve_addresses("localhost") == ["127.0.0.1"]  # RFC 6761
    answer = await resolver.resolve_mx("[192.0.2.9]")
    assert answer.hosts == (MxHost(0, "192.0.2.9"),) and answer.implicit
    assert dns_server.queries == 0


async def test_mx_pointing_at_ip_literal_is_used_with_a_warning(
    resolver: CachingResolver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hayate.dns"):
        answer = await resolver.resolve_mx("iplit.test")
    assert answer.hosts == (MxHost(10, "192.0.2.55"),)
    assert "is an IP address" in caplog.text
    assert await resolver.resolve_addresses(answer.hosts[0].host) == ["192.0.2.55"]


async def test_mx_pointing_at_cname_is_followed_with_a_warning(
    resolver: CachingResolver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hayate.dns"):
        answer = await resolver.resolve_mx("cname.test")
        assert answer.hosts == (MxHost(10, "alias.cname.test"),)
        assert await resolver.resolve_addresses("alias.cname.test") == ["192.0.2.1"]
    assert "is a CNAME for mx1.example.test" in caplog.text


async def test_invalid_names_are_permanent(resolver: CachingResolver) -> None:
    for bad in ("", "a..b", "x" * 64 + ".test"):
        with pytest.raises(DnsError) as info:
            await resolver.resolve_mx(bad)
        assert info.value.temporary is False


async def test_txt_records(resolver: CachingResolver) -> None:
    assert await resolver.resolve_txt("example.test") == ["v=spf1 ip4:192.0.2.0/24 -all"]
    assert await resolver.resolve_txt("_dmarc.example.test") == ["v=DMARC1; p=reject"]
    dkim = await resolver.resolve_txt("sel._domainkey.example.test")
    assert dkim == ["v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"]  # strings joined
    assert await resolver.resolve_txt("mx1.example.test") == []  # NODATA
    with pytest.raises(DnsError) as info:
        await resolver.resolve_txt("_dmarc.nosuch.example.test")
    assert info.value.temporary is False


async def test_large_txt_falls_back_to_tcp(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    chunks = ['"' + chr(ord("a") + i) * 250 + '"' for i in range(8)]  # 2000 bytes > 1232
    dns_server.set_zone(
        "big.test", f"$TTL 60\n@ SOA ns h 1 1 1 1 60\n@ NS ns\n@ TXT {' '.join(chunks)}"
    )
    [text] = await resolver.resolve_txt("big.test")
    assert text == "".join(chr(ord("a") + i) * 250 for i in range(8))
    transports = {q.transport for q in dns_server.log if q.name == "big.test"}
    assert transports == {"udp", "tcp"}  # truncated over UDP, then asked again over TCP


async def test_ptr_records(resolver: CachingResolver) -> None:
    assert await resolver.resolve_ptr("192.0.2.1") == ["mx1.example.test"]
    assert await resolver.resolve_ptr("192.0.2.2") == ["mx2.example.test"]
    with pytest.raises(DnsError) as info:
        await resolver.resolve_ptr("192.0.2.77")
    assert info.value.temporary is False
    with pytest.raises(DnsError):
        await resolver.resolve_ptr("not-an-ip")


def test_nameserver_specs() -> None:
    assert (parse_nameserver("192.0.2.1").address, parse_nameserver("192.0.2.1").port) == (
        "192.0.2.1",
        53,
    )
    assert parse_nameserver("127.0.0.1:5353").port == 5353
    assert parse_nameserver("2001:db8::1").address == "2001:db8::1"
    v6 = parse_nameserver("[2001:db8::1]:5300")
    assert (v6.address, v6.port) == ("2001:db8::1", 5300)
    for bad in ("dns.example", "192.0.2.1:x", "192.0.2.1:70000", "[2001:db8::1]x"):
        with pytest.raises(ValueError):
            parse_nameserver(bad)


def test_system_resolver_is_used_without_nameservers() -> None:
    resolver = CachingResolver([])  # reads /etc/resolv.conf, or warns when there is none
    assert resolver.stats() == CacheStats(entries=0, hits=0, queries=0, shared=0)
