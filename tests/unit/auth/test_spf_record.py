"""SPF record parsing and macro expansion (RFC 7208 sections 4.6, 5, 7), examples of the RFC."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.spf import SpfSyntaxError, expand_macros, is_spf_record, parse_record
from hayate.dns import CachingResolver


def test_record_recognition() -> None:
    assert is_spf_record("v=spf1 -all")
    assert is_spf_record("v=spf1")
    assert is_spf_record("V=SPF1 -all")
    assert not is_spf_record("v=spf10 -all")
    assert not is_spf_record("v=DMARC1; p=none")
    assert not is_spf_record("spf2.0/pra -all")


def test_mechanisms_qualifiers_and_cidr() -> None:
    rec = parse_record(
        "v=spf1 ip4:192.0.2.1/24 -ip6:2001:db8::/32 ~a a:x.example.com/24//64 "
        "?mx/28 include:_spf.example.net ptr exists:%{i}.bl.example.org redirect=r.example "
        "exp=e.%{d} unknown-mod=ignored"
    )
    names = [(m.qualifier, m.name) for m in rec.mechanisms]
    assert names == [
        ("+", "ip4"), ("-", "ip6"), ("~", "a"), ("+", "a"), ("?", "mx"),
        ("+", "include"), ("+", "ptr"), ("+", "exists"),
    ]
    ip4, ip6, a_plain, a_dual, mx = rec.mechanisms[:5]
    assert ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert ip6.network == ipaddress.ip_network("2001:db8::/32") and ip6.result == "fail"
    assert (a_plain.spec, a_plain.cidr4, a_plain.cidr6) == ("", 32, 128)
    assert (a_dual.spec, a_dual.cidr4, a_dual.cidr6) == ("x.example.com", 24, 64)
    assert (mx.spec, mx.cidr4) == ("", 28)
    assert rec.redirect == "r.example" and rec.exp == "e.%{d}"


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 ip4:192.0.2.1/33 -all",  # CIDR out of range
        "v=spf1 ip4:192.0.2.1/024 -all",  # leading zero
        "v=spf1 ip4:2001:db8::1 -all",  # wrong family
        "v=spf1 ip6:192.0.2.1 -all",
        "v=spf1 ip4:300.1.1.1 -all",
        "v=spf1 a:x.example/33",
        "v=spf1 include -all",  # include needs a domain
        "v=spf1 exists -all",
        "v=spf1 foo:bar -all",  # unknown mechanism
        "v=spf1 allx",
        "v=spf1 +all garbage",  # a syntax error after a match still counts
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 include:example.com/24",  # no CIDR on include
        "v=spf1 a:1.2.3.4",  # numeric top label
        "v=spf1 exists:%{z}.example.com",  # unknown macro letter
        "v=spf1 exists:%{d0}.example.com",  # zero labels
        "v=spf1 exists:100%.example.com",  # lone percent
        "v=spf1 include:%{c}.example.com",  # c only in explanations
    ],
)
def test_bad_records_are_syntax_errors(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)


def test_spaces_and_unknown_modifiers() -> None:
    rec = parse_record("v=spf1   ip4:192.0.2.1    -all  foo=%{d}.bar ")
    assert [m.name for m in rec.mechanisms] == ["ip4", "all"]
    assert rec.redirect is None


# -- macros: RFC 7208 7.4 examples, with a real resolver for %{p} ---------------------------


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    zones = {
        "example.com": zone_text("mx A 192.0.2.3\nmail.email A 192.0.2.3"),
        "2.0.192.in-addr.arpa": zone_text(
            "3 PTR mail.email.example.com.\n4 PTR bogus.example.com."
        ),
    }
    with TestDnsServer(zones) as server:
        yield server


SENDER = "strong-bad@email.example.com"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}", "helo.example.org"),
        ("%%%_%-", "% %20"),
        ("%{p}", "mail.email.example.com"),  # the validated PTR name
        ("%{S}", "strong-bad%40email.example.com"),  # upper case: URL-escaped
    ],
)
async def test_rfc_macro_examples(dns_server: TestDnsServer, spec: str, expected: str) -> None:
    resolver = CachingResolver([dns_server.address], timeout=1.0)
    got = await expand_macros(
        spec, ip="192.0.2.3", sender=SENDER, domain="email.example.com",
        helo="helo.example.org", resolver=resolver,
    )
    assert got == expected


async def test_ipv6_macros_and_unvalidated_ptr(dns_server: TestDnsServer) -> None:
    resolver = CachingResolver([dns_server.address], timeout=1.0)
    got = await expand_macros(
        "%{ir}.%{v}._spf.%{d2}", ip="2001:db8::cb01", sender=SENDER,
        domain="email.example.com", resolver=resolver,
    )
    assert got == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )
    # 192.0.2.4 has a PTR whose name does not resolve back to it: %{p} is "unknown".
    got = await expand_macros("%{p}", ip="192.0.2.4", sender=SENDER, domain="example.com",
                              resolver=resolver)
    assert got == "unknown"


async def test_explanation_macros(dns_server: TestDnsServer) -> None:
    resolver = CachingResolver([dns_server.address], timeout=1.0)
    got = await expand_macros(
        "%{c} is not allowed by %{d} at %{r} (%{t})", ip="2001:db8::cb01", sender=SENDER,
        domain="example.com", resolver=resolver, explanation=True, receiver="mx.us.test",
        now=1234.5,
    )
    assert got == "2001:db8::cb01 is not allowed by example.com at mx.us.test (1234)"
    with pytest.raises(SpfSyntaxError):
        await expand_macros("%{c}.example.com", ip="192.0.2.3", sender=SENDER,
                            domain="example.com", resolver=resolver)


async def test_long_expansion_is_truncated_on_the_left(dns_server: TestDnsServer) -> None:
    resolver = CachingResolver([dns_server.address], timeout=1.0)
    local = ".".join(["abcdefghij"] * 30)
    got = await expand_macros("%{l}.example.com", ip="192.0.2.3", sender=f"{local}@x.example",
                              domain="x.example", resolver=resolver)
    assert len(got) <= 253 and got.endswith("abcdefghij.example.com")
    assert not got.startswith(".")
