"""The pure parts of the DNS check: SPF text, tag lists, MTA-STS policies, zone lines."""

from __future__ import annotations

import pytest

from hayate.dnscheck.policyfetch import PolicyFetchError, parse_response
from hayate.dnscheck.results import CheckResult, Record, Status
from hayate.dnscheck.spfrecord import (
    all_qualifier,
    spf_records,
    suggest_new,
    suggest_with,
)
from hayate.dnscheck.tags import mx_pattern_matches, parse_sts_policy, parse_tags


def test_spf_records_are_picked_out_of_a_txt_set() -> None:
    txts = ["google-site-verification=abc", "v=spf1 mx -all", "v=spf10 nope", "V=SPF1"]
    assert spf_records(txts) == ["v=spf1 mx -all", "V=SPF1"]


@pytest.mark.parametrize(("record", "qualifier"), [
    ("v=spf1 mx -all", "-"), ("v=spf1 ~all", "~"), ("v=spf1 all", "+"), ("v=spf1 ?ALL", "?"),
    ("v=spf1 mx", None), ("v=spf1 redirect=_spf.example.com", None),
])
def test_all_qualifier(record: str, qualifier: str | None) -> None:
    assert all_qualifier(record) == qualifier


def test_suggestions_add_missing_ips_first_and_keep_the_rest() -> None:
    assert suggest_new(["192.0.2.1", "2001:DB8::1"]) == "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all"
    assert suggest_with("v=spf1 include:_spf.google.com ~all", ["192.0.2.1"]) == (
        "v=spf1 ip4:192.0.2.1 include:_spf.google.com ~all"
    )
    assert suggest_with("v=spf1 mx +all", []) == "v=spf1 mx ~all"
    assert suggest_with("v=spf1 ip4:192.0.2.1 mx", ["192.0.2.1"]) == "v=spf1 ip4:192.0.2.1 mx ~all"
    assert suggest_with("v=spf1 redirect=_spf.example.com", ["192.0.2.1"]) == (
        "v=spf1 ip4:192.0.2.1 redirect=_spf.example.com"
    )


def test_tags_and_sts_policy() -> None:
    assert parse_tags(" v=DMARC1 ;P = reject; rua=mailto:a@b.test;") == [
        ("v", "DMARC1"), ("p", "reject"), ("rua", "mailto:a@b.test")
    ]
    policy = parse_sts_policy("version: STSv1\r\nmode: enforce\r\nmx: MX1.example.com.\r\n"
                              "mx: *.example.net\r\nmax_age: 86400\r\n")
    assert policy.problems == ()
    assert policy.mx == ("mx1.example.com", "*.example.net") and policy.max_age == 86400
    broken = parse_sts_policy("version: STSv2\nmode: strict\nmax_age: soon\n")
    assert len(broken.problems) == 3


@pytest.mark.parametrize(("pattern", "host", "matches"), [
    ("mx.example.com", "MX.example.com.", True),
    ("*.example.com", "mx1.example.com", True),
    ("*.example.com", "a.b.example.com", False),
    ("*.example.com", "example.com", False),
    ("mx.example.com", "mx2.example.com", False),
])
def test_mx_patterns(pattern: str, host: str, matches: bool) -> None:
    assert mx_pattern_matches(pattern, host) is matches


def test_zone_lines_split_long_txt_and_escape_quotes() -> None:
    assert Record("example.com", "MX", "10 mx.example.com.").zone_line() == (
        "example.com. IN MX 10 mx.example.com."
    )
    line = Record("s._domainkey.example.com", "TXT", "p=" + "A" * 300).zone_line()
    parts = line.split(" IN TXT ", 1)[1].split(" ")
    assert [len(p) for p in parts] == [257, 49]  # 255 and 47 characters, quoted
    assert Record("x.test", "TXT", 'say "hi"').zone_line() == 'x.test. IN TXT "say \\"hi\\""'


def test_only_required_failures_fail() -> None:
    assert CheckResult("MX", "a.test", Status.WRONG).failing
    assert not CheckResult("MX", "a.test", Status.WRONG, required=False).failing
    assert not CheckResult("DMARC", "a.test", Status.WARN).failing


def test_http_responses_with_length_chunked_and_garbage() -> None:
    status, headers, body = parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello-extra"
    )
    assert (status, headers["content-type"], body) == (200, "text/plain", b"hello")
    _, _, chunked = parse_response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n3;x=y\r\n!!!\r\n0\r\n\r\n"
    )
    assert chunked == b"hello!!!"
    with pytest.raises(PolicyFetchError):
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")
