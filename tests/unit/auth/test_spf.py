"""check_spf() against a real DNS server on 127.0.0.1: every result, includes, redirects,
macros, the lookup and void-lookup limits, SERVFAIL, the null sender and the HELO identity."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.spf import check_helo, check_spf, helo_is_domain
from hayate.dns import CachingResolver

LIMIT_10 = " ".join(["a:h.spf.test"] * 10)
LIMIT_11 = " ".join(["a:h.spf.test"] * 11)
MANY_MX = "\n".join(f'manymx MX {i} h.spf.test.' for i in range(11))

SPF_ZONE = f"""
pass        TXT "v=spf1 ip4:192.0.2.0/24 -all"
fail        TXT "v=spf1 ip4:192.0.2.1 -all"
softfail    TXT "v=spf1 ip4:192.0.2.1 ~all"
neutral     TXT "v=spf1 ?all"
nothing     TXT "some other text"
nothing     A   192.0.2.50
two         TXT "v=spf1 -all"
two         TXT "v=spf1 +all"
syntax      TXT "v=spf1 ip4:192.0.2.0/24 bogus:x -all"
split       TXT "v=spf1 ip4:192.0.2.0/24" " -all"
inc         TXT "v=spf1 include:inc2.spf.test -all"
inc2        TXT "v=spf1 include:inc3.spf.test ~all"
inc3        TXT "v=spf1 ip4:198.51.100.0/24 -all"
incfail     TXT "v=spf1 include:fail.spf.test ?all"
incnone     TXT "v=spf1 include:nothing.spf.test -all"
incbroken   TXT "v=spf1 include:broken.spf.test -all"
redir       TXT "v=spf1 redirect=pass.spf.test"
redirall    TXT "v=spf1 ?all redirect=fail.spf.test"
redirnone   TXT "v=spf1 redirect=nothing.spf.test"
a           TXT "v=spf1 a -all"
a           A   192.0.2.10
acidr       TXT "v=spf1 a:hosts.spf.test/24 -all"
hosts       A   203.0.113.5
mx          TXT "v=spf1 mx/30 -all"
mx          MX  10 mxhost.spf.test.
mxhost      A   203.0.113.77
implicit    TXT "v=spf1 mx -all"
implicit    A   192.0.2.77
manymx      TXT "v=spf1 mx -all"
{MANY_MX}
h           A   10.9.9.9
v6          TXT "v=spf1 ip6:2001:db8::/32 a:v6host.spf.test//64 -all"
v6host      AAAA 2001:db8:1::1
ptr         TXT "v=spf1 ptr -all"
host.ptr    A   203.0.113.9
exists      TXT "v=spf1 exists:%{{ir}}.%{{l1r+-}}._spf.%{{d}} -all"
3.2.0.192.alice._spf.exists A 127.0.0.2
limit10     TXT "v=spf1 {LIMIT_10} -all"
limit11     TXT "v=spf1 {LIMIT_11} -all"
void2       TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test -all"
void3       TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test a:nx3.spf.test -all"
void6only   TXT "v=spf1 a:v6host.spf.test a:v6host.spf.test exists:v6host.spf.test -all"
void6two    TXT "v=spf1 a:v6host.spf.test exists:v6host.spf.test ?all"
loop        TXT "v=spf1 include:loop.spf.test -all"
expfail     TXT "v=spf1 -all exp=explain.spf.test"
explain     TXT "%{{i}} is not one of %{{d}}'s designated mail servers"
helo        TXT "v=spf1 ip4:192.0.2.1 -all"
"""

ZONES = {
    "spf.test": zone_text(SPF_ZONE),
    "113.0.203.in-addr.arpa": zone_text("9 PTR host.ptr.spf.test.\n10 PTR host.ptr.spf.test."),
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer(ZONES, servfail={"broken.spf.test"}) as server:
        yield server


@pytest.fixture
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=1.0, failure_ttl=0.0)


@pytest.mark.parametrize(
    ("ip", "domain", "result", "mechanism"),
    [
        ("192.0.2.99", "pass", "pass", "ip4:192.0.2.0/24"),
        ("198.51.100.1", "pass", "fail", "-all"),
        ("192.0.2.1", "fail", "pass", "ip4:192.0.2.1"),
        ("192.0.2.2", "fail", "fail", "-all"),
        ("192.0.2.2", "softfail", "softfail", "~all"),
        ("192.0.2.2", "neutral", "neutral", "?all"),
        ("192.0.2.2", "split", "pass", "ip4:192.0.2.0/24"),  # strings of one TXT are joined
        ("198.51.100.7", "inc", "pass", "include:inc2.spf.test"),  # two levels deep
        ("192.0.2.99", "inc", "fail", "-all"),  # inner ~all is "no match", not softfail
        ("192.0.2.1", "incfail", "pass", "include:fail.spf.test"),
        ("192.0.2.2", "incfail", "neutral", "?all"),  # included fail → no match
        ("192.0.2.5", "redir", "pass", "ip4:192.0.2.0/24"),
        ("10.0.0.1", "redir", "fail", "-all"),
        ("192.0.2.1", "redirall", "neutral", "?all"),  # redirect ignored when "all" is there
        ("192.0.2.10", "a", "pass", "a"),
        ("192.0.2.11", "a", "fail", "-all"),
        ("203.0.113.200", "acidr", "pass", "a:hosts.spf.test/24"),
        ("203.0.114.5", "acidr", "fail", "-all"),
        ("203.0.113.78", "mx", "pass", "mx/30"),
        ("203.0.113.90", "mx", "fail", "-all"),
        ("192.0.2.77", "implicit", "fail", "-all"),  # no implicit MX for SPF (RFC 7208 5.4)
        ("2001:db8:ffff::1", "v6", "pass", "ip6:2001:db8::/32"),
        ("2001:db9:0:0::5", "v6", "fail", "-all"),
        ("203.0.113.9", "ptr", "pass", "ptr"),
        ("203.0.113.10", "ptr", "fail", "-all"),  # PTR name does not resolve back to it
        ("::ffff:192.0.2.9", "pass", "pass", "ip4:192.0.2.0/24"),  # v4-mapped client
        ("192.0.2.1", "limit10", "fail", "-all"),  # exactly 10 lookups is allowed
        ("192.0.2.1", "void2", "fail", "-all"),  # two void lookups are allowed
    ],
)
async def test_results(
    resolver: CachingResolver, ip: str, domain: str, result: str, mechanism: str
) -> None:
    got = await check_spf(ip, f"user@{domain}.spf.test", "client.example", resolver)
    assert (got.result, got.mechanism) == (result, mechanism), got
    assert got.domain == f"{domain}.spf.test"
    assert got.identity == "mailfrom"


@pytest.mark.parametrize(
    ("domain", "result", "reason"),
    [
        ("nothing", "none", "no SPF record"),
        ("nxdomain", "none", "no SPF record"),
        ("two", "permerror", "publishes 2 SPF records"),
        ("syntax", "permerror", "unknown mechanism"),
        ("incnone", "permerror", "has no SPF record"),
        ("redirnone", "permerror", "has no SPF record"),
        ("limit11", "permerror", "more than 10 DNS lookups"),
        ("loop", "permerror", "more than 10 DNS lookups"),
        ("void3", "permerror", "more than 2 void DNS lookups"),
        # an IPv4 client: A queries for a name with only AAAA records come back empty
        ("void6only", "permerror", "more than 2 void DNS lookups"),
        ("manymx", "permerror", "more than 10 MX hosts"),
        ("broken", "temperror", "broken.spf.test"),
        ("incbroken", "temperror", "broken.spf.test/TXT"),
    ],
)
async def test_errors_and_none(
    resolver: CachingResolver, domain: str, result: str, reason: str
) -> None:
    got = await check_spf("192.0.2.1", f"user@{domain}.spf.test", "client.example", resolver)
    assert got.result == result, got
    assert reason in got.reason
    assert got.mechanism == ""


async def test_exists_with_macros(resolver: CachingResolver, dns_server: TestDnsServer) -> None:
    dns_server.reset_counts()
    got = await check_spf("192.0.2.3", "alice+tag@exists.spf.test", "c.example", resolver)
    assert got.result == "pass", got
    assert dns_server.count("3.2.0.192.alice._spf.exists.spf.test", "A") == 1
    other = await check_spf("192.0.2.4", "alice@exists.spf.test", "c.example", resolver)
    assert other.result == "fail"


async def test_explanation_of_a_fail(resolver: CachingResolver) -> None:
    got = await check_spf("192.0.2.99", "bob@expfail.spf.test", "c.example", resolver)
    assert got.result == "fail"
    assert got.explanation == "192.0.2.99 is not one of expfail.spf.test's designated mail servers"


async def test_null_sender_uses_helo(resolver: CachingResolver) -> None:
    got = await check_spf("192.0.2.1", "", "helo.spf.test", resolver)
    assert (got.result, got.identity, got.sender) == ("pass", "helo", "postmaster@helo.spf.test")
    assert got.domain == "helo.spf.test"
    bad = await check_spf("192.0.2.2", "", "helo.spf.test", resolver)
    assert bad.result == "fail"


async def test_helo_identity(resolver: CachingResolver) -> None:
    assert (await check_helo("192.0.2.1", "helo.spf.test", resolver)).result == "pass"
    assert (await check_helo("192.0.2.9", "helo.spf.test", resolver)).result == "fail"
    # An address literal or a single label is not a checkable domain.
    assert (await check_helo("192.0.2.1", "[192.0.2.1]", resolver)).result == "none"
    assert (await check_helo("192.0.2.1", "localhost", resolver)).result == "none"


async def test_no_dns_for_ip_only_records(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    dns_server.reset_counts()
    got = await check_spf("192.0.2.7", "x@pass.spf.test", "c.example", resolver)
    assert got.result == "pass" and got.lookups == 0
    assert dns_server.queries == 1  # the TXT record only
    again = await check_spf("192.0.2.7", "y@pass.spf.test", "c.example", resolver)
    assert again.result == "pass" and dns_server.queries == 1  # cached


async def test_bad_client_address(resolver: CachingResolver) -> None:
    got = await check_spf("not-an-ip", "x@pass.spf.test", "c.example", resolver)
    assert got.result == "permerror"


async def test_timeout_is_temperror(dns_server: TestDnsServer) -> None:
    slow = TestDnsServer({"spf.test": zone_text(SPF_ZONE)}, no_answer={"pass.spf.test"})
    with slow:
        resolver = CachingResolver([slow.address], timeout=5.0)
        got = await check_spf("192.0.2.1", "x@pass.spf.test", "c", resolver, timeout=0.3)
    assert got.result == "temperror" and "0.3" in got.reason


@pytest.mark.parametrize(
    ("helo", "checkable"),
    [
        ("mail.example.com", True),
        ("Mail.Example.COM.", True),
        ("[192.0.2.1]", False),
        ("[IPv6:2001:db8::1]", False),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("localhost", False),
        ("", False),
        ("bad..example.com", False),
    ],
)
def test_which_helo_names_can_be_checked(helo: str, checkable: bool) -> None:
    assert helo_is_domain(helo) is checkable


async def test_two_empty_answers_for_the_clients_family_are_still_allowed(
    resolver: CachingResolver,
) -> None:
    got = await check_spf("192.0.2.1", "user@void6two.spf.test", "client.example", resolver)
    assert (got.result, got.mechanism) == ("neutral", "?all")
