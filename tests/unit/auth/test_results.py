"""Authentication-Results (RFC 8601): our field, read back with an independent parser
(the ``authres`` package), folding, comments, and removal of forged fields."""

from __future__ import annotations

import authres

from hayate.auth.dmarc import DmarcResult
from hayate.auth.results import (
    authentication_results,
    authserv_id_of,
    comment,
    format_field,
    remove_our_results,
    value,
)
from hayate.auth.spf import SpfResult
from hayate.auth.verdicts import ArcVerdict, DkimVerdict

SPF_PASS = SpfResult("pass", "example.com", "ip4:192.0.2.0/24", sender="a@example.com")
DKIM_PASS = DkimVerdict("pass", "example.com", "sel", "rsa-sha256", "", "abcd1234efgh")
DMARC_PASS = DmarcResult("pass", "example.com", "reject", "none", "example.com", True, True)


def unfold(field: bytes) -> str:
    return field.decode().replace("\r\n", "").replace("\t", " ")


def parse(field: bytes) -> authres.AuthenticationResultsHeader:
    return authres.AuthenticationResultsHeader.parse(unfold(field))


def test_the_usual_field() -> None:
    field = authentication_results(
        "mx.us.test", spf=SPF_PASS, dkim=[DKIM_PASS], dmarc=DMARC_PASS, arc=ArcVerdict("none")
    )
    assert unfold(field) == (
        "Authentication-Results: mx.us.test; "
        "spf=pass (ip4:192.0.2.0/24 matched) smtp.mailfrom=example.com; "
        "dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 "
        "header.b=abcd1234; dmarc=pass (p=REJECT) header.from=example.com; arc=none"
    )
    assert field.endswith(b"\r\n") and field.count(b"\r\n") >= 4
    for line in field.decode().split("\r\n")[:-1]:
        assert len(line.expandtabs(8)) <= 78, line
        assert line == field.decode().split("\r\n")[0] or line.startswith("\t")
    parsed = parse(field)
    assert parsed.authserv_id == "mx.us.test"
    got = [(r.method, r.result) for r in parsed.results]
    assert got == [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass"), ("arc", "none")]
    dkim = parsed.results[1]
    assert {(p.type, p.name): p.value for p in dkim.properties} == {
        ("header", "d"): "example.com", ("header", "s"): "sel",
        ("header", "a"): "rsa-sha256", ("header", "b"): "abcd1234",
    }


def test_failures_with_reasons_and_helo_identity() -> None:
    spf = SpfResult("fail", "helo.example", "-all", "Not (yet) allowed\\ here\r\n",
                    identity="helo", sender="postmaster@helo.example")
    dkim = [
        DkimVerdict("fail", "example.com", "s1", "ed25519-sha256", "body hash mismatch", "x/y+z="),
        DkimVerdict("temperror", "example.org", "s2", "rsa-sha256", "SERVFAIL", "QQQQ"),
    ]
    dmarc = DmarcResult("fail", "example.com", "reject", "quarantine", "example.com",
                        reason="no aligned SPF or DKIM pass; outside pct=50")
    arc = ArcVerdict("pass", 2, "lists.example.net")
    field = authentication_results("mx.us.test", spf=spf, dkim=dkim, dmarc=dmarc, arc=arc,
                                   dmarc_note="quarantined")
    text = unfold(field)
    assert "spf=fail (-all matched: Not \\(yet\\) allowed\\\\ here) smtp.helo=helo.example" in text
    assert 'header.b="x/y+z="' in text
    assert "dmarc=fail (p=REJECT dis=QUARANTINE; no aligned SPF or DKIM pass; outside" in text
    assert "arc=pass (i=2 d=lists.example.net)" in text
    parsed = parse(field)
    assert [(r.method, r.result) for r in parsed.results] == [
        ("spf", "fail"), ("dkim", "fail"), ("dkim", "temperror"), ("dmarc", "fail"),
        ("arc", "pass"),
    ]
    assert parsed.results[0].properties[0].name == "helo"
    assert parsed.results[1].properties[-1].value == "x/y+z="


def test_no_signatures_and_no_results() -> None:
    field = authentication_results("mx.us.test", spf=SPF_PASS, dkim=[])
    assert "dkim=none" in unfold(field)
    assert unfold(format_field("mx.us.test", [])) == "Authentication-Results: mx.us.test; none"
    none = DmarcResult("permerror", reason="no From header field")
    assert "dmarc=permerror (no From header field)" in unfold(
        authentication_results("mx", dmarc=none)
    )


def test_long_values_are_folded_within_width() -> None:
    long_reason = "x " * 200
    field = authentication_results(
        "mx.us.test", dkim=[DkimVerdict("fail", "a" * 60 + ".example", "s", reason=long_reason)]
    )
    lines = field.decode().split("\r\n")[:-1]
    assert all(len(line.expandtabs(8)) <= 78 for line in lines if " " in line.strip())
    assert "..." in unfold(field)  # comments are cut at 120 characters


def test_comment_and_value_quoting() -> None:
    assert comment("a (b) \\ c\x00d é") == "(a \\(b\\) \\\\ c d)"
    assert comment("tab\there") == "(tab here)"
    assert value("example.com") == "example.com"
    assert value("user@example.com") == "user@example.com"
    assert value('a "b" c') == '"a \\"b\\" c"'
    assert value("x/y=") == '"x/y="'


def test_authserv_id_of() -> None:
    assert authserv_id_of(" MX.us.test; spf=pass") == "mx.us.test"
    assert authserv_id_of("(comment) mx.us.test 1; none") == "mx.us.test"
    assert authserv_id_of("mx.us.test") == "mx.us.test"
    assert authserv_id_of("") == ""


def test_remove_forged_fields_keeps_the_rest() -> None:
    body = b"Authentication-Results: mx.us.test; body text stays\r\n"
    msg = (
        b"Received: from a by b\r\n"
        b"Authentication-Results: MX.US.TEST; dmarc=pass\r\n"
        b"Authentication-Results: other.example;\r\n\tspf=pass smtp.mailfrom=x\r\n"
        b"authentication-results: (forged)\r\n mx.us.test; dkim=pass\r\n"
        b"Subject: hi\r\n\r\n" + body
    )
    clean = remove_our_results(msg, "mx.us.test")
    assert clean == (
        b"Received: from a by b\r\n"
        b"Authentication-Results: other.example;\r\n\tspf=pass smtp.mailfrom=x\r\n"
        b"Subject: hi\r\n\r\n" + body
    )
    untouched = b"Subject: x\r\n\r\nbody\r\n"
    assert remove_our_results(untouched, "mx.us.test") is untouched
    only = b"Authentication-Results: mx.us.test; none\r\n\r\nbody\r\n"
    assert remove_our_results(only, "mx.us.test") == b"\r\nbody\r\n"


def test_separate_helo_result_follows_the_mail_from_one() -> None:
    helo = SpfResult("softfail", "mail.example.org", "~all", identity="helo",
                     sender="postmaster@mail.example.org")
    field = authentication_results("mx.us.test", spf=SPF_PASS, spf_helo=helo, dkim=[])
    assert unfold(field) == (
        "Authentication-Results: mx.us.test; "
        "spf=pass (ip4:192.0.2.0/24 matched) smtp.mailfrom=example.com; "
        "spf=softfail (~all matched) smtp.helo=mail.example.org; dkim=none"
    )
    parsed = parse(field)
    spf_results = [(r.result, [(p.type, p.name, p.value) for p in r.properties])
                   for r in parsed.results if r.method == "spf"]
    assert spf_results == [
        ("pass", [("smtp", "mailfrom", "example.com")]),
        ("softfail", [("smtp", "helo", "mail.example.org")]),
    ]
