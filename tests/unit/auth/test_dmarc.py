"""DMARC: records, From domains, alignment, policy discovery over a real DNS server, pct."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.dmarc import (
    DmarcRecord,
    FromFieldError,
    author_domains,
    check_dmarc,
    discover_policy,
    evaluate,
    parse_record,
    sample_of,
)
from hayate.auth.orgdomain import aligned, organizational_domain
from hayate.auth.spf import SpfResult
from hayate.auth.verdicts import DkimVerdict
from hayate.dns import CachingResolver

# -- organizational domains and alignment ---------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("Mail.Example.CO.UK.", "example.co.uk"),
        ("co.uk", "co.uk"),  # a public suffix is its own
        ("x.alice.github.io", "alice.github.io"),  # private section
        ("a.b.example.test", "example.test"),  # unknown TLD: default rule
    ],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


def test_alignment_modes() -> None:
    assert aligned("mail.example.com", "example.com", "r")
    assert not aligned("mail.example.com", "example.com", "s")
    assert aligned("EXAMPLE.com.", "example.com", "s")
    assert not aligned("example.co.uk", "other.co.uk", "r")  # same suffix is not enough
    assert not aligned("", "example.com", "r")


# -- records --------------------------------------------------------------------------------


def test_parse_full_record() -> None:
    rec = parse_record(
        "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=s; pct=20; "
        "rua=mailto:agg@example.com,mailto:b@example.net; ruf=mailto:f@example.com; fo=1"
    )
    assert rec == DmarcRecord(
        "reject", "quarantine", "s", "s", 20,
        ("mailto:agg@example.com", "mailto:b@example.net"), ("mailto:f@example.com",), "1",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=none", DmarcRecord("none", "none")),
        ("v=DMARC1;p=Quarantine;sp=bogus;pct=300;adkim=x", DmarcRecord("quarantine", "quarantine")),
        ("v=DMARC1; p=bogus; rua=mailto:a@example.com",
         DmarcRecord("none", "none", rua=("mailto:a@example.com",))),
        ("v=DMARC1; p=bogus", None),
        ("v=DMARC1", None),  # no p= and no rua=
        ("p=reject; v=DMARC1", None),  # v= must come first
        ("v=spf1 -all", None),
    ],
)
def test_record_defaults_and_bad_records(text: str, expected: DmarcRecord | None) -> None:
    assert parse_record(text) == expected


# -- From -----------------------------------------------------------------------------------


def test_author_domains() -> None:
    msg = b"Subject: x\r\nFrom: \"Bob (the boss)\" <bob@Example.COM>\r\n\r\nFrom: a@b.c\r\n"
    assert author_domains(msg) == ["example.com"]
    folded = b"From:\r\n  Alice <alice@a.example>,\r\n  bob@b.example, carol@a.example\r\n\r\n"
    assert author_domains(folded) == ["a.example", "b.example"]
    two = b"From: a@one.example\r\nFrom: b@two.example\r\n\r\nbody"
    assert author_domains(two) == ["one.example", "two.example"]
    with pytest.raises(FromFieldError):
        author_domains(b"Subject: none\r\n\r\nFrom: x@y.example\r\n")
    with pytest.raises(FromFieldError):
        author_domains(b"From: undisclosed\r\n\r\n")


# -- evaluation (pure) ----------------------------------------------------------------------

REJECT = DmarcRecord("reject", "quarantine")
STRICT = DmarcRecord("reject", "reject", adkim="s", aspf="s")


def spf(result: str, domain: str) -> SpfResult:
    return SpfResult(result, domain)


def sig(result: str, domain: str) -> DkimVerdict:
    return DkimVerdict(result, domain, "sel")


def test_evaluate_alignment() -> None:
    ok = evaluate("example.com", REJECT, "example.com", spf("pass", "bounce.example.com"), [])
    assert (ok.result, ok.spf_aligned, ok.dkim_aligned, ok.policy) == (
        "pass", True, False, "reject")
    strict = evaluate("example.com", STRICT, "example.com", spf("pass", "bounce.example.com"), [])
    assert (strict.result, strict.disposition) == ("fail", "reject")
    by_dkim = evaluate("example.com", STRICT, "example.com", spf("fail", "example.com"),
                       [sig("fail", "example.com"), sig("pass", "example.com")])
    assert by_dkim.result == "pass" and by_dkim.dkim_aligned and not by_dkim.spf_aligned
    unaligned = evaluate("example.com", REJECT, "example.com", spf("pass", "other.net"),
                         [sig("pass", "other.net")])
    assert (unaligned.result, unaligned.disposition) == ("fail", "reject")


def test_evaluate_temporary_errors_never_fail() -> None:
    temp = evaluate("example.com", REJECT, "example.com", spf("temperror", "example.com"), [])
    assert temp.result == "temperror" and temp.disposition == "none"
    dkim_temp = evaluate("example.com", REJECT, "example.com", spf("fail", "x.net"),
                         [sig("temperror", "mail.example.com")])
    assert dkim_temp.result == "temperror"
    # A temporary error of an identifier that could not align anyway does not help.
    other = evaluate("example.com", REJECT, "example.com", spf("temperror", "x.net"), [])
    assert other.result == "fail"


def test_subdomain_policy_and_pct() -> None:
    sub = evaluate("a.example.com", REJECT, "example.com", None, [])
    assert (sub.result, sub.policy, sub.disposition) == ("fail", "quarantine", "quarantine")
    half = DmarcRecord("reject", "reject", pct=50)
    inside = evaluate("example.com", half, "example.com", None, [], sample=49)
    outside = evaluate("example.com", half, "example.com", None, [], sample=50)
    assert inside.disposition == "reject"
    assert outside.disposition == "quarantine" and "pct=50" in outside.reason
    q = DmarcRecord("quarantine", "quarantine", pct=0)
    assert evaluate("example.com", q, "example.com", None, [], sample=0).disposition == "none"
    assert evaluate("example.com", None, "", None, []).result == "none"


def test_sample_is_deterministic_and_spread() -> None:
    assert sample_of("<id@x> example.com") == sample_of("<id@x> example.com")
    values = {sample_of(f"<{i}@x> example.com") for i in range(400)}
    assert min(values) < 10 and max(values) > 89 and len(values) > 80


# -- discovery and check_dmarc over DNS -----------------------------------------------------

ZONES = {
    "reject.test": zone_text(
        '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:r@reject.test"\n'
        '_dmarc.own TXT "v=DMARC1; p=none"'
    ),
    "none.test": zone_text('_dmarc TXT "v=DMARC1; p=none"'),
    "half.test": zone_text('_dmarc TXT "v=DMARC1; p=reject; pct=50"'),
    "strict.test": zone_text('_dmarc TXT "v=DMARC1; p=reject; adkim=s; aspf=s"'),
    "multi.test": zone_text('_dmarc TXT "v=DMARC1; p=reject"\n_dmarc TXT "v=DMARC1; p=none"'),
    "other.test": zone_text('_dmarc TXT "not dmarc"\n_dmarc TXT "v=DMARC1; p=quarantine"'),
    "norecord.test": zone_text("@ A 192.0.2.1"),
    "broken.test": zone_text("@ A 192.0.2.1"),
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer(ZONES, servfail={"_dmarc.broken.test"}) as server:
        yield server


@pytest.fixture
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=1.0, failure_ttl=0.0)


async def test_discovery(resolver: CachingResolver) -> None:
    rec, where = await discover_policy("reject.test", resolver)
    assert rec is not None and rec.policy == "reject" and where == "reject.test"
    rec, where = await discover_policy("a.b.reject.test", resolver)  # org-domain fallback
    assert rec is not None and where == "reject.test"
    rec, where = await discover_policy("own.reject.test", resolver)  # its own record first
    assert rec is not None and rec.policy == "none" and where == "own.reject.test"
    assert await discover_policy("multi.test", resolver) == (None, "")
    rec, _ = await discover_policy("other.test", resolver)  # non-DMARC TXT ignored
    assert rec is not None and rec.policy == "quarantine"
    assert await discover_policy("norecord.test", resolver) == (None, "")
    assert await discover_policy("nx.norecord.test", resolver) == (None, "")


def msg(from_: str, mid: str = "<1@x>") -> bytes:
    return f"From: {from_}\r\nMessage-ID: {mid}\r\nSubject: t\r\n\r\nbody\r\n".encode()


@pytest.mark.parametrize(
    ("from_", "spf_domain", "result", "policy", "disposition"),
    [
        ("a@reject.test", "reject.test", "pass", "reject", "none"),
        ("a@reject.test", "bounces.reject.test", "pass", "reject", "none"),  # relaxed
        ("a@reject.test", "evil.test", "fail", "reject", "reject"),
        ("a@sub.reject.test", "evil.test", "fail", "quarantine", "quarantine"),  # sp=
        ("a@none.test", "evil.test", "fail", "none", "none"),
        ("a@strict.test", "mail.strict.test", "fail", "reject", "reject"),  # aspf=s
        ("a@strict.test", "strict.test", "pass", "reject", "none"),
        ("a@multi.test", "evil.test", "none", "", "none"),
        ("a@norecord.test", "evil.test", "none", "", "none"),
        ("a@broken.test", "evil.test", "temperror", "", "none"),
        # Two authors: each is checked and the strictest failure wins.
        ("a@none.test, b@reject.test", "none.test", "fail", "reject", "reject"),
        ("a@reject.test, b@norecord.test", "reject.test", "pass", "reject", "none"),
    ],
)
async def test_check_dmarc(
    resolver: CachingResolver, from_: str, spf_domain: str, result: str, policy: str,
    disposition: str,
) -> None:
    got = await check_dmarc(msg(from_), spf("pass", spf_domain), [], resolver)
    assert (got.result, got.policy, got.disposition) == (result, policy, disposition), got


async def test_missing_from_is_permerror(resolver: CachingResolver) -> None:
    got = await check_dmarc(b"Subject: x\r\n\r\nbody\r\n", None, [], resolver)
    assert (got.result, got.disposition) == ("permerror", "none")
    assert "From" in got.reason


async def test_pct_sampling_follows_the_key(resolver: CachingResolver) -> None:
    inside = next(k for k in (f"<{i}@x>" for i in range(200)) if sample_of(f"{k} half.test") < 50)
    outside = next(
        k for k in (f"<{i}@x>" for i in range(200)) if sample_of(f"{k} half.test") >= 50
    )
    got_in = await check_dmarc(msg("a@half.test", inside), None, [], resolver)
    got_out = await check_dmarc(msg("a@half.test", outside), None, [], resolver)
    assert (got_in.result, got_in.disposition) == ("fail", "reject")
    assert (got_out.result, got_out.disposition) == ("fail", "quarantine")
