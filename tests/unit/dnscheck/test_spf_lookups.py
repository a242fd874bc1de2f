"""The SPF lookup count of ``hayate dns check`` (RFC 7208 4.6.4) and the fix it writes, against
a real DNS server on 127.0.0.1; where it matters, the count is held against our evaluator
(``hayate.auth.spf``), which gives "permerror" exactly when a limit is crossed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text
from tests.unit.dnscheck.harness import Env, row

from hayate.auth.spf import check_spf
from hayate.dns.resolver import CachingResolver
from hayate.dnscheck.results import Status
from hayate.dnscheck.spfcount import LookupCount, count_lookups
from hayate.dnscheck.spffix import needs_fix, plan_fix

D = "example.test"
OURS = "192.0.2.10"
STRANGER = "198.51.100.99"  # listed nowhere: the worst case the count describes


@asynccontextmanager
async def world(zones: dict[str, str]) -> AsyncIterator[CachingResolver]:
    with TestDnsServer({name: zone_text(text) for name, text in zones.items()}) as dns:
        yield CachingResolver([dns.address], timeout=2.0)


def hosts(prefix: str, n: int, net: str = "192.0.2") -> str:
    return "\n".join(f"{prefix}{i} A {net}.{100 + i}" for i in range(n))


def spf(record: str) -> str:
    return f'@ TXT "{record}"'


async def counted(resolver: CachingResolver, record: str) -> LookupCount:
    return await count_lookups(resolver, D, record, [OURS])


async def verdict(resolver: CachingResolver, ip: str = STRANGER) -> str:
    outcome = await check_spf(ip, f"postmaster@{D}", "mx.hayate.test", resolver)
    return outcome.result


@pytest.mark.parametrize(("n", "result"), [(10, "fail"), (11, "permerror")])
async def test_the_count_crosses_the_limit_where_the_evaluator_does(n: int, result: str) -> None:
    # 4 "a" here, an include with 2 more and a nested include with the rest
    inner = n - 4 - 1 - 2 - 1
    record = "v=spf1 ip4:192.0.2.10 " + " ".join(f"a:h{i}.{D}" for i in range(4)) + (
        " include:one.test -all")
    zones = {
        D: f"{spf(record)}\n{hosts('h', 4)}",
        "one.test": spf("v=spf1 a:x0.one.test a:x1.one.test include:two.test ~all")
        + "\n" + hosts("x", 2, "203.0.113"),
        "two.test": spf("v=spf1 " + " ".join(f"a:y{i}.two.test" for i in range(inner)) + " -all")
        + "\n" + hosts("y", inner, "203.0.113"),
    }
    async with world(zones) as resolver:
        count = await counted(resolver, record)
        assert (count.lookups, count.voids) == (n, 0)
        [*_, include] = count.terms
        assert (include.text, include.lookups) == ("include:one.test", 1 + 2 + 1 + inner)
        assert await verdict(resolver) == result
        assert await verdict(resolver, OURS) == "pass"  # our own IP matches first


async def test_terms_after_all_and_a_redirect_beside_all_cost_nothing() -> None:
    record = "v=spf1 a -all mx include:x.test redirect=y.test"
    async with world({D: f"{spf(record)}\n@ A 192.0.2.10"}) as resolver:
        count = await counted(resolver, record)
    assert count.lookups == 1 and [t.text for t in count.terms] == ["a"]
    assert count.ignored == ("mx", "include:x.test")


async def test_a_redirect_is_followed_and_counted() -> None:
    record = "v=spf1 ip4:192.0.2.10 redirect=_spf.example.test"
    zones = {D: f"{spf(record)}\n_spf TXT \"v=spf1 mx a:mx.example.test -all\"\n"
                "@ MX 10 mx\nmx A 192.0.2.20"}
    async with world(zones) as resolver:
        count = await counted(resolver, record)
    [redirect] = count.terms
    assert (redirect.kind, redirect.lookups, count.lookups) == ("redirect", 3, 3)
    assert [t.text for t in redirect.inner] == ["mx", "a:mx.example.test"]


async def test_void_lookups_over_two_are_an_error_and_the_fix_drops_them() -> None:
    record = f"v=spf1 ip4:{OURS} a:gone1.{D} a:gone2.{D} exists:gone3.{D} mx:nomx.{D} -all"
    zones = {D: f"{spf(record)}\nnomx A 192.0.2.30"}
    async with world(zones) as resolver:
        count = await counted(resolver, record)
        assert (count.lookups, count.voids) == (4, 4)
        assert await verdict(resolver) == "permerror"
        fix = plan_fix(D, record, count)
    assert fix.enough and fix.voids <= 2
    assert fix.removed  # the void terms match nobody: they go, nothing else changes
    assert fix.record.startswith(f"v=spf1 ip4:{OURS}") and fix.record.endswith("-all")


async def test_mx_with_more_than_ten_hosts_is_an_error_and_is_flattened() -> None:
    mx = "\n".join(f"big MX 10 m{i}.{D}." for i in range(11))
    record = f"v=spf1 mx:big.{D} -all"
    zones = {D: f"{spf(record)}\n{mx}\n{hosts('m', 11)}"}
    async with world(zones) as resolver:
        count = await counted(resolver, record)
        [term] = count.terms
        assert term.broken and "11 MX hosts" in term.note
        assert count.errors and "11 MX hosts" in count.errors[0]
        assert await verdict(resolver) == "permerror"
        fix = plan_fix(D, record, count)
    assert fix.flattened == (f"mx:big.{D}",) and fix.lookups == 0
    # in the order of the MX hosts (by preference, then name), the same on every run
    by_name = sorted(range(11), key=lambda i: f"m{i}")
    assert fix.record == "v=spf1 " + " ".join(f"ip4:192.0.2.{100 + i}" for i in by_name) + (
        " -all")


async def test_ten_mx_hosts_are_counted_as_one_lookup_with_ten_address_lookups() -> None:
    mx = "\n".join(f"@ MX 10 m{i}.{D}." for i in range(10))
    record = "v=spf1 mx -all"
    async with world({D: f"{spf(record)}\n{mx}\n{hosts('m', 10)}"}) as resolver:
        count = await counted(resolver, record)
    assert count.lookups == 1 and not count.errors
    assert "10 address lookup(s) of at most 10" in count.terms[0].note


async def test_ptr_counts_once_and_notes_its_own_limit() -> None:
    names = "\n".join(f"10 PTR n{i}.{D}." for i in range(12))
    record = "v=spf1 ptr -all"
    zones = {D: spf(record), "2.0.192.in-addr.arpa": names}
    async with world(zones) as resolver:
        count = await counted(resolver, record)
    [term] = count.terms
    assert (term.lookups, term.voids) == (1, 0)
    assert "12 PTR names: only the first 10 are checked" in term.note


async def test_macros_loops_and_missing_records() -> None:
    record = (f"v=spf1 exists:%{{i}}.rbl.{D} include:loop1.{D} include:nothing.{D} "
              f"include:nx.{D} ~all")
    zones = {D: "\n".join([
        spf(record),
        f'loop1 TXT "v=spf1 include:loop2.{D} -all"',
        f'loop2 TXT "v=spf1 include:loop1.{D} -all"',
        'nothing TXT "google-site-verification=x"',
    ])}
    async with world(zones) as resolver:
        count = await counted(resolver, record)
        fix = plan_fix(D, record, count)
    macro, loop, nothing, nxdomain = count.terms
    assert (macro.lookups, macro.inner) == (1, ()) and "macro" in macro.note
    [back] = loop.inner[0].inner  # loop1 → loop2 → loop1
    assert back.broken and "loop" in back.note
    assert nothing.broken and "has no SPF record" in nothing.note and nothing.voids == 0
    assert nxdomain.broken and nxdomain.voids == 1
    assert len(count.errors) == 3
    assert needs_fix(count)
    assert fix.removed == ("include:nothing.example.test", "include:nx.example.test")
    # the loop sits inside an include that cannot be flattened (its record is broken)
    assert not fix.enough


def _provider_zones(n: int, per: int) -> dict[str, str]:
    zones = {}
    for p in range(n):
        body = " ".join(f"ip4:203.0.{p}.{i}" for i in range(per))
        zones[f"p{p}.test"] = spf(f"v=spf1 {body} include:more.p{p}.test ~all") + (
            f'\nmore TXT "v=spf1 a:host.p{p}.test ~all"\nhost A 203.0.{p}.200')
    return zones


async def test_over_the_limit_the_costliest_includes_are_flattened_exactly() -> None:
    record = f"v=spf1 ip4:{OURS} " + " ".join(f"include:p{p}.test" for p in range(4)) + " -all"
    async with world({D: spf(record), **_provider_zones(4, 3)}) as resolver:
        count = await counted(resolver, record)
        assert count.lookups == 12  # 4 × (include + include + a)
        fix = plan_fix(D, record, count)
        assert fix.enough and fix.lookups == 9 and fix.flattened == ("include:p0.test",)
        assert fix.record == (f"v=spf1 ip4:{OURS} ip4:203.0.0.0 ip4:203.0.0.1 ip4:203.0.0.2 "
                              "ip4:203.0.0.200 include:p1.test include:p2.test include:p3.test "
                              "-all")


async def test_a_long_flattened_record_moves_its_addresses_into_sub_records() -> None:
    record = f"v=spf1 ip4:{OURS} " + " ".join(f"include:p{p}.test" for p in range(6)) + " -all"
    async with world({D: spf(record), **_provider_zones(6, 12)}) as resolver:
        count = await counted(resolver, record)
        fix = plan_fix(D, record, count)
    assert count.lookups == 18 and fix.enough and fix.lookups <= 10
    assert fix.extra and all(len(r.value) <= 450 for r in fix.extra)
    assert len(fix.record) <= 450
    assert fix.extra[0].name == f"_spf1.{D}"
    assert f"include:_spf1.{D}" in fix.record


Publish = Callable[[str], dict[str, str]]


async def test_the_check_prints_the_count_and_a_fix_that_passes_once_published(env: Env) -> None:
    record = f"v=spf1 ip4:{OURS} " + " ".join(f"include:p{p}.{D}" for p in range(4)) + " -all"
    records = env.records(D)
    lines = [spf(record)]
    for p in range(4):
        lines.append(f'p{p} TXT "v=spf1 ' + " ".join(f"ip4:203.0.{p}.{i}" for i in range(3))
                     + f' include:more.p{p}.{D} ~all"')
        lines.append(f'more.p{p} TXT "v=spf1 a:host.p{p}.{D} ~all"')
        lines.append(f"host.p{p} A 203.0.{p}.200")
    records["spf"] = "\n".join(lines)
    spf_row = row(await env.check(D, records), "SPF")
    assert spf_row.status == Status.WRONG
    assert "12 DNS lookups: more than 10" in spf_row.detail
    assert "12 of at most 10 DNS lookups, 0 of at most 2 void" in spf_row.detail
    assert (f"include:p0.{D} 3 [include:more.p0.{D} 2 [a:host.p0.{D} 1 "
            f"(host.p0.{D}: 1 address(es))]]") in spf_row.detail
    assert f"fix: replace include:p0.{D} by the addresses" in spf_row.detail
    assert spf_row.fix is not None and spf_row.fix.startswith(f'{D}. IN TXT "v=spf1 ip4:{OURS}')
    # publish what it says, as the owner would, and check again
    lines[0] = "@ TXT " + spf_row.fix.split(" IN TXT ", 1)[1]
    records["spf"] = "\n".join(lines)
    again = row(await env.check(D, records), "SPF")
    assert again.status == Status.FOUND, again.detail
    assert "9 of at most 10 DNS lookups" in again.detail
