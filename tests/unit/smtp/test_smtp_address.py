"""MAIL/RCPT argument syntax: paths, addresses, ESMTP parameters, xtext."""

from __future__ import annotations

import pytest

from hayate.smtp.address import (
    ParamError,
    parse_params,
    split_path,
    valid_address,
    valid_domain,
    valid_xtext,
)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("FROM:<a@b.test>", ("a@b.test", [])),
        ("from: <a@b.test> SIZE=1  BODY=7BIT", ("a@b.test", ["SIZE=1", "BODY=7BIT"])),
        ("FROM:<>", ("", [])),
        ("FROM:a@b.test SIZE=1", ("a@b.test", ["SIZE=1"])),
        ('FROM:<"x>y"@b.test>', ('"x>y"@b.test', [])),
        ('FROM:<"x\\">"@b.test>', ('"x\\">"@b.test', [])),
        ("FROM:<@r1.test,@r2.test:a@b.test>", ("a@b.test", [])),
        ("FROM:<a@b.test", None),
        ("FROM:<a@b.test>x", None),
        ("FROM:", None),
        ("FROM:<@r1.test>", None),
        ("TO:<a@b.test>", None),
        ("FROM:a<b@c.test>", None),
    ],
)
def test_split_path(arg: str, expected: tuple[str, list[str]] | None) -> None:
    assert split_path(arg, "FROM:") == expected


@pytest.mark.parametrize(
    "address",
    [
        "a@b.test", "first.last@sub.b-c.test", "x+tag@b.test", "!#$%&'*+/=?^_`{|}~-@b.test",
        '"quoted string"@b.test', '"esc\\"aped"@b.test', "a@[192.0.2.1]", "a@[IPv6:::1]",
        "a@localhost",
    ],
)
def test_valid_addresses(address: str) -> None:
    assert valid_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "", "@b.test", "a@", "a", "a b@c.test", "a..b@c.test", ".a@c.test", "a.@c.test",
        "a@b..test", "a@-b.test", "a@b-.test", "a@b_c.test", "a@[1.2.3]", "a@[IPv6:zz::1]",
        "a@[192.0.2.1", "\u00e9@b.test", "a@\u00e9.test", "x" * 65 + "@b.test",
        "a@" + "b" * 64 + ".test", "a@" + ("b" * 60 + ".") * 5 + "test", '"unterminated@b.test',
    ],
)
def test_invalid_addresses(address: str) -> None:
    assert not valid_address(address)


def test_utf8_addresses_only_when_allowed() -> None:
    assert valid_address("jos\u00e9@\u00e9xample.test", utf8=True)
    assert not valid_address("jos\u00e9@\u00e9xample.test")
    assert valid_domain("xn--xample-9ua.test")
    assert not valid_domain("a b.test", utf8=True)


def test_parse_params() -> None:
    assert parse_params(["size=10", "SMTPUTF8", "X-Y=z"]) == {
        "SIZE": "10", "SMTPUTF8": None, "X-Y": "z"
    }
    for bad in (["=1"], ["SIZE="], ["SIZE=1", "size=2"], ["A=\x01"], ["-X=1"], ["\u00e9=1"]):
        with pytest.raises(ParamError):
            parse_params(bad)


@pytest.mark.parametrize(("value", "ok"), [
    ("abc", True), ("a+2Bb", True), ("+3D", True), ("a+2b", False), ("a+2", False),
    ("a=b", False), ("a b", False), ("", False), ("\u00e9", False),
])
def test_xtext(value: str, ok: bool) -> None:
    assert valid_xtext(value) is ok
