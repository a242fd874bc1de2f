"""Every check of ``hayate dns check`` against a real DNS server and a real HTTPS policy host."""

from __future__ import annotations

from tests.support.dnsworld import good_policy
from tests.unit.dnscheck.harness import Env, policy_row, row

from hayate.auth.dkim_keys import dns_record
from hayate.dnscheck.report import exit_status
from hayate.dnscheck.results import Record, Status

D = "example.test"


async def test_a_complete_domain_is_found_everywhere(env: Env) -> None:
    rows = await env.check(D, env.records(D))
    assert [(r.check, r.status) for r in rows] == [
        ("MX", Status.FOUND), ("A", Status.FOUND), ("SPF", Status.FOUND),
        ("DKIM", Status.FOUND), ("DMARC", Status.FOUND), ("PTR", Status.FOUND),
        ("FCrDNS", Status.FOUND), ("MTA-STS", Status.FOUND), ("MTA-STS", Status.FOUND),
        ("TLS-RPT", Status.FOUND),
    ], [r for r in rows if r.status != Status.FOUND]
    assert exit_status(rows) == 0
    assert all(r.fix is None for r in rows)
    assert row(rows, "PTR").name == "10.2.0.192.in-addr.arpa"
    assert env.policy is not None and env.policy.requests == [
        ("mta-sts.example.test", "/.well-known/mta-sts.txt")
    ]


async def test_missing_spf_suggests_a_record_with_our_ip(env: Env) -> None:
    records = env.records(D)
    del records["spf"]
    rows = await env.check(D, records)
    spf = row(rows, "SPF")
    assert spf.status == Status.MISSING
    assert spf.fix == 'example.test. IN TXT "v=spf1 ip4:192.0.2.10 -all"'
    assert exit_status(rows) == 1
    assert all(r.status == Status.FOUND for r in rows if r.check != "SPF")


async def test_spf_without_our_ip_is_wrong_and_the_fix_keeps_existing_terms(env: Env) -> None:
    records = env.records(D)
    records["spf"] = '@ TXT "v=spf1 ip4:198.51.100.1 a -all"'
    rows = await env.check(D, records, local=False)
    spf = row(rows, "SPF")
    assert spf.status == Status.WRONG
    assert "192.0.2.10" in spf.detail and "fail" in spf.detail
    assert spf.found == "v=spf1 ip4:198.51.100.1 a -all"
    assert spf.expected == "v=spf1 ip4:192.0.2.10 ip4:198.51.100.1 a -all"
    # The suggestion, published, passes.
    records["spf"] = spf.fix or ""
    assert row(await env.check(D, records, local=False), "SPF").status == Status.FOUND


async def test_spf_plus_all_is_a_warning_and_two_records_are_wrong(env: Env) -> None:
    records = env.records(D)
    records["spf"] = '@ TXT "v=spf1 ip4:192.0.2.10 +all"'
    rows = await env.check(D, records)
    spf = row(rows, "SPF")
    assert spf.status == Status.WARN and "+all" in spf.detail
    assert spf.expected == "v=spf1 ip4:192.0.2.10 ~all"
    assert exit_status(rows) == 0
    records["spf"] = '@ TXT "v=spf1 ip4:192.0.2.10 -all"\n@ TXT "v=spf1 mx -all"'
    spf = row(await env.check(D, records), "SPF")
    assert spf.status == Status.WRONG and "2 v=spf1 records" in spf.detail


async def test_spf_over_ten_lookups_is_wrong(env: Env) -> None:
    records = env.records(D)
    many = " ".join(f"a:h{i}.example.test" for i in range(6))
    records["spf"] = (f'@ TXT "v=spf1 ip4:192.0.2.10 {many} include:_spf.example.test -all"\n'
                      '_spf TXT "v=spf1 mx a ptr exists:x.example.test ~all"')
    spf = row(await env.check(D, records), "SPF")
    assert spf.status == Status.WRONG
    assert "11 DNS lookups" in spf.detail


async def test_dkim_wrong_missing_and_retired_keys(env: Env) -> None:
    records = env.records(D)
    good = env.store.keys(D)[0]
    other = env.store.generate("other.example", "ed25519", "s1")
    _, other_value = dns_record(other)
    records["dkim"] = Record(f"s1._domainkey.{D}", "TXT", other_value).zone_line()
    rows = await env.check(D, records)
    dkim = row(rows, "DKIM")
    assert dkim.status == Status.WRONG and "not our public key" in dkim.detail
    assert dkim.fix == Record(*dns_record(good)[:1], "TXT", dns_record(good)[1]).zone_line()
    assert exit_status(rows) == 1

    # A new rsa key (active) not yet in DNS: missing; the ed25519 key is still found.
    new = env.store.generate(D, "rsa", "s2", bits=1024, activate=True)
    records = env.records(D)
    records["dkim"] = "\n".join(
        line for line in records["dkim"].split("\n") if not line.startswith("s2.")
    )
    rows = await env.check(D, records)
    assert row(rows, "DKIM", f"s1._domainkey.{D}").status == Status.FOUND
    missing = row(rows, "DKIM", f"s2._domainkey.{D}")
    assert missing.status == Status.MISSING
    assert missing.fix is not None and missing.fix.startswith(f"s2._domainkey.{D}. IN TXT ")
    assert dns_record(new)[1].split("p=")[1][:40] in missing.fix

    # Retired keys may go: not failing either way.
    env.store.set_state(D, "s2", "retired")
    rows = await env.check(D, records)
    retired = row(rows, "DKIM", f"s2._domainkey.{D}")
    assert retired.status == Status.INFO and not retired.failing
    assert exit_status(rows) == 0


async def test_no_dkim_key_at_all_says_how_to_make_one(env: Env) -> None:
    records = env.records(D)
    rows = await env.check("nokeys.test", {k: v for k, v in records.items() if k != "dkim"})
    dkim = row(rows, "DKIM")
    assert dkim.status == Status.MISSING and dkim.fix == "hayate dkim keygen nokeys.test"


async def test_dmarc_missing_none_and_malformed(env: Env) -> None:
    records = env.records(D)
    del records["dmarc"]
    rows = await env.check(D, records)
    dmarc = row(rows, "DMARC")
    assert dmarc.status == Status.MISSING
    assert dmarc.fix == ('_dmarc.example.test. IN TXT "v=DMARC1; p=quarantine; '
                         'rua=mailto:dmarc@example.test; adkim=r; aspf=r"')
    assert exit_status(rows) == 1

    records["dmarc"] = '_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@example.test"'
    rows = await env.check(D, records)
    dmarc = row(rows, "DMARC")
    assert dmarc.status == Status.WARN and "p=none" in dmarc.detail
    assert dmarc.expected == "v=DMARC1; p=quarantine; rua=mailto:d@example.test"
    assert exit_status(rows) == 0

    records["dmarc"] = '_dmarc TXT "v=DMARC1; p=maybe"'
    assert row(await env.check(D, records), "DMARC").status == Status.WRONG


async def test_ptr_that_names_another_host_is_wrong(env: Env) -> None:
    records = env.records(D)
    records["spf"] = '@ TXT "v=spf1 ip4:192.0.2.20 -all"'
    rows = await env.check(
        D, records,
        egress=[{"name": "out1", "address": "192.0.2.20", "helo": "out1.hayate.test"}],
        reverse="20 PTR other.hayate.test.",
        host_zone="mx A 192.0.2.10\nout1 A 192.0.2.20\nother A 192.0.2.77",
    )
    ptr = row(rows, "PTR")
    assert ptr.status == Status.WRONG
    assert ptr.found == "other.hayate.test"
    assert ptr.fix == "20.2.0.192.in-addr.arpa. IN PTR out1.hayate.test."
    assert row(rows, "FCrDNS").status == Status.FOUND
    assert row(rows, "SPF").status == Status.FOUND  # evaluated for the egress IP and HELO
    assert exit_status(rows) == 1


async def test_ptr_name_that_does_not_resolve_back(env: Env) -> None:
    records = env.records(D)
    records["spf"] = '@ TXT "v=spf1 ip4:192.0.2.30 -all"'
    rows = await env.check(
        D, records,
        egress=[{"name": "out2", "address": "192.0.2.30", "helo": "other.hayate.test"}],
        reverse="30 PTR other.hayate.test.",
    )
    assert row(rows, "PTR").status == Status.FOUND
    fcrdns = row(rows, "FCrDNS")
    assert fcrdns.status == Status.WRONG
    assert fcrdns.found == "192.0.2.77"
    assert fcrdns.fix == "other.hayate.test. IN A 192.0.2.30"


async def test_missing_ptr(env: Env) -> None:
    rows = await env.check(D, env.records(D), reverse="99 PTR x.hayate.test.")
    ptr = row(rows, "PTR")
    assert ptr.status == Status.MISSING
    assert ptr.fix == "10.2.0.192.in-addr.arpa. IN PTR mx.hayate.test."


async def test_missing_mta_sts_and_tls_rpt_suggest_both_records(env: Env) -> None:
    records = env.records(D)
    for kind in ("sts", "sts_host", "tlsrpt"):
        del records[kind]
    rows = await env.check(D, records)
    txt = row(rows, "MTA-STS", "_mta-sts.example.test")
    assert txt.status == Status.MISSING
    assert txt.fix is not None and txt.fix.startswith('_mta-sts.example.test. IN TXT "v=STSv1; id=')
    policy = policy_row(rows)
    assert policy.status == Status.MISSING and "does not resolve" in policy.detail
    assert policy.fix is not None
    assert "version: STSv1\nmode: enforce\nmx: mx.hayate.test\nmax_age: 604800" in policy.fix
    tlsrpt = row(rows, "TLS-RPT")
    assert tlsrpt.status == Status.MISSING
    assert tlsrpt.fix == ('_smtp._tls.example.test. IN TXT '
                          '"v=TLSRPTv1; rua=mailto:tlsrpt@example.test"')
    assert exit_status(rows) == 1


async def test_mta_sts_policy_problems(env: Env) -> None:
    records = env.records(D)
    rows = await env.check(D, records, policy=(404, "text/plain", b"gone\n"))
    assert policy_row(rows).status == Status.MISSING

    rows = await env.check(D, records, policy=(200, "text/plain", good_policy("mx.elsewhere.test")))
    bad = policy_row(rows)
    assert bad.status == Status.WRONG
    assert "mx.hayate.test matches no mx" in bad.detail

    rows = await env.check(D, records, policy=(200, "text/plain", good_policy("*.hayate.test")))
    assert policy_row(rows).status == Status.FOUND

    rows = await env.check(D, records, policy=(200, "text/html", good_policy()))
    assert policy_row(rows).status == Status.WRONG

    rows = await env.check(D, records, policy=(200, "text/plain", good_policy(mode="testing")))
    testing = policy_row(rows)
    assert testing.status == Status.WARN and exit_status(rows) == 0

    rows = await env.check(D, records, trust_policy_cert=False)
    untrusted = policy_row(rows)
    assert untrusted.status == Status.WRONG
    assert "TLS failed" in untrusted.detail


async def test_tls_rpt_without_rua_is_wrong(env: Env) -> None:
    records = env.records(D)
    records["tlsrpt"] = '_smtp._tls TXT "v=TLSRPTv1; ruf=x"'
    tlsrpt = row(await env.check(D, records), "TLS-RPT")
    assert tlsrpt.status == Status.WRONG and "rua" in tlsrpt.detail


async def test_mx_elsewhere_is_wrong_for_a_local_domain_and_informative_otherwise(
    env: Env,
) -> None:
    records = env.records(D)
    records["mx"] = "@ MX 10 mx.provider.example."
    rows = await env.check(D, records)
    mx = row(rows, "MX")
    assert mx.status == Status.WRONG
    assert mx.fix == "example.test. IN MX 10 mx.hayate.test."
    assert exit_status(rows) == 1
    rows = await env.check(D, records, local=False,
                           policy=(200, "text/plain", good_policy("mx.provider.example")))
    mx = row(rows, "MX")
    assert mx.status == Status.INFO and not mx.failing
    assert exit_status(rows) == 0


async def test_a_dns_failure_is_an_error_not_a_missing_record(env: Env) -> None:
    rows = await env.check(D, env.records(D), servfail=["_dmarc.example.test"])
    dmarc = row(rows, "DMARC")
    assert dmarc.status == Status.ERROR and "DNS lookup failed" in dmarc.detail
    assert dmarc.fix is None
    assert exit_status(rows) == 1


async def test_host_without_address_and_no_egress(env: Env) -> None:
    rows = await env.check(D, env.records(D), host_zone="other A 192.0.2.77")
    a = row(rows, "A")
    assert a.status == Status.MISSING and a.name == "mx.hayate.test"
    assert row(rows, "PTR").status == Status.MISSING
    assert row(rows, "SPF").status == Status.WRONG  # no IP could be checked


async def test_an_ipv6_source_gets_ip6_ptr_and_aaaa_checks(env: Env) -> None:
    records = env.records(D)
    records["spf"] = '@ TXT "v=spf1 ip4:192.0.2.10 -all"'
    v6 = "2001:db8::5"
    reverse = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    rows = await env.check(
        D, records,
        egress=[{"name": "v6", "address": v6, "helo": "out6.hayate.test"}],
        host_zone="mx A 192.0.2.10\nout6 AAAA 2001:db8::5",
        reverse=f"{reverse}. PTR out6.hayate.test.",
        reverse_origin="ip6.arpa",
    )
    spf = row(rows, "SPF")
    assert spf.status == Status.WRONG
    assert spf.expected == "v=spf1 ip6:2001:db8::5 ip4:192.0.2.10 -all"
    assert row(rows, "PTR", reverse).status == Status.FOUND
    fcrdns = row(rows, "FCrDNS", "out6.hayate.test")
    assert fcrdns.status == Status.FOUND and fcrdns.expected == "2001:db8::5"
