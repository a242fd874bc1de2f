"""CachingResolver's cache and query sharing, counted at a real DNS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.core.seams import DnsError, MxHost
from hayate.dns import CachingResolver, TtlCache
from hayate.dns.resolver import FAILURE_TTL

if TYPE_CHECKING:
    from conftest import FakeClock


async def test_cache_hit_sends_no_query(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    first = await resolver.resolve_mx("example.test")
    assert dns_server.count("example.test", "MX") == 1
    for _ in range(5):
        assert await resolver.resolve_mx("EXAMPLE.test.") == first
    assert dns_server.count("example.test", "MX") == 1
    assert resolver.stats().hits == 5


async def test_answer_expires_with_its_ttl(
    resolver: CachingResolver, dns_server: TestDnsServer, clock: FakeClock
) -> None:
    await resolver.resolve_mx("example.test")  # the zone's TTL is 60 s
    dns_server.set_zone("example.test", zone_text("@ MX 10 new.example.test.", ttl=60))
    clock.advance(59)
    assert (await resolver.resolve_mx("example.test")).hosts[0].host == "mx1.example.test"
    assert dns_server.count("example.test", "MX") == 1
    clock.advance(2)
    assert (await resolver.resolve_mx("example.test")).hosts == (MxHost(10, "new.example.test"),)
    assert dns_server.count("example.test", "MX") == 2


async def test_nxdomain_is_cached_for_the_soa_minimum(
    resolver: CachingResolver, dns_server: TestDnsServer, clock: FakeClock
) -> None:
    with pytest.raises(DnsError):
        await resolver.resolve_mx("late.example.test")
    dns_server.set_zone(
        "example.test", zone_text("late MX 10 mx1.example.test.", ttl=60, negative_ttl=120)
    )
    clock.advance(55)  # negative TTL = min(SOA TTL 60, SOA minimum 120)
    with pytest.raises(DnsError) as info:
        await resolver.resolve_mx("late.example.test")
    assert info.value.temporary is False
    assert dns_server.count("late.example.test") == 1
    clock.advance(10)
    answer = await resolver.resolve_mx("late.example.test")
    assert answer.hosts == (MxHost(10, "mx1.example.test"),)
    assert dns_server.count("late.example.test") == 2


async def test_null_mx_is_cached(resolver: CachingResolver, dns_server: TestDnsServer) -> None:
    for _ in range(3):
        assert (await resolver.resolve_mx("nullmx.test")).null_mx
    assert dns_server.count("nullmx.test") == 1


async def test_temporary_failure_is_remembered_only_briefly(
    resolver: CachingResolver, dns_server: TestDnsServer, clock: FakeClock
) -> None:
    with pytest.raises(DnsError):
        await resolver.resolve_mx("broken.test")
    dns_server.servfail.clear()  # the server recovers
    with pytest.raises(DnsError) as info:  # within the few seconds: no new query
        await resolver.resolve_mx("broken.test")
    assert info.value.temporary
    queries = dns_server.count("broken.test")
    clock.advance(FAILURE_TTL + 0.1)
    assert FAILURE_TTL <= 5
    answer = await resolver.resolve_mx("broken.test")
    assert answer.hosts == (MxHost(10, "mx1.example.test"),)
    assert dns_server.count("broken.test") == queries + 1


async def test_concurrent_lookups_share_one_query(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    answers = await asyncio.gather(*(resolver.resolve_mx("example.test") for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert dns_server.count("example.test", "MX") == 1
    stats = resolver.stats()
    assert (stats.queries, stats.shared) == (1, 49)


async def test_concurrent_timeouts_share_one_query(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    results = await asyncio.gather(
        *(resolver.resolve_mx("slow.test") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, DnsError) and r.temporary for r in results)
    assert dns_server.count("slow.test", "MX") == 1  # one query (dnspython tries it once)


async def test_a_cancelled_caller_does_not_cancel_the_shared_query(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    first = asyncio.ensure_future(resolver.resolve_mx("example.test"))
    second = asyncio.ensure_future(resolver.resolve_mx("example.test"))
    await asyncio.sleep(0)
    first.cancel()
    answer = await second
    assert answer.hosts[0].host == "mx1.example.test"
    assert first.cancelled()
    assert dns_server.count("example.test", "MX") == 1


async def test_cache_is_bounded(dns_server: TestDnsServer, clock: FakeClock) -> None:
    resolver = CachingResolver([dns_server.address], timeout=0.5, cache_size=2, clock=clock)
    for name in ("example.test", "equal.test", "nullmx.test", "example.test"):
        await resolver.resolve_mx(name)
    assert resolver.stats().entries == 2
    assert dns_server.count("example.test", "MX") == 2  # evicted by the third name


def test_ttl_cache_lru_and_expiry(clock: FakeClock) -> None:
    cache: TtlCache[str, int] = TtlCache(2, clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3, 10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("zero", 4, 0)
    assert cache.get("zero") is None
    clock.advance(10)
    assert cache.get("a") is None and len(cache) == 1
