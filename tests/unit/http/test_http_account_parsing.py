"""The pieces of the password-change endpoint that read what the client sent."""

from __future__ import annotations

import base64

import pytest
from starlette.requests import Request

from hayate.http.account import (
    BadBody,
    basic_credentials,
    client_of,
    new_password_from,
    password_problem,
    secure_enough,
)


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials() -> None:
    assert basic_credentials(basic("alice@example.com:pa:ss wörd")) == (
        "alice@example.com", "pa:ss wörd")
    assert basic_credentials("basic " + basic("a@b.c:x")[6:]) == ("a@b.c", "x")
    for bad in (None, "", "Bearer abc", "Basic !!!", basic("no-colon"), basic(":pw"),
                basic("user:"), "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
                "Basic " + "A" * 5000):
        assert basic_credentials(bad) is None, bad


def test_password_problems() -> None:
    assert password_problem("correct horse battery", 1024) is None
    assert password_problem("", 1024) == "the new password is empty"
    assert "longer than 8" in (password_problem("x" * 9, 8) or "")
    for bad in ("with\nnewline", "nul\x00", "tab\tbed", "del\x7f"):
        assert "control characters" in (password_problem(bad, 1024) or ""), bad


def test_new_password_from_json_and_forms() -> None:
    assert new_password_from("application/json", b'{"new_password": "s3cret"}') == "s3cret"
    assert new_password_from("application/json; charset=utf-8",
                             '{"new_password": "pässword"}'.encode()) == "pässword"
    form = "application/x-www-form-urlencoded"
    assert new_password_from(form, b"new_password=a%26b%3Dc+d") == "a&b=c d"
    assert new_password_from("", b"new_password=plain") == "plain"


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"{not json", 400),
        ("application/json", b'["new_password"]', 400),
        ("application/json", b'{"new_password": 12345}', 400),
        ("application/json", b"{}", 400),
        ("application/x-www-form-urlencoded", b"new_password=a&new_password=b", 400),
        ("application/x-www-form-urlencoded", b"other=1", 400),
        ("application/x-www-form-urlencoded", b"&".join([b"f=1"] * 50), 400),
        ("application/x-www-form-urlencoded", b"new_password=\xff", 400),
        ("text/plain", b"new_password=x", 415),
        ("multipart/form-data; boundary=x", b"--x--", 415),
    ],
)
def test_bad_bodies(content_type: str, body: bytes, status: int) -> None:
    with pytest.raises(BadBody) as caught:
        new_password_from(content_type, body)
    assert caught.value.status == status


def request(client: str, scheme: str = "http", **headers: str) -> Request:
    return Request({
        "type": "http", "method": "POST", "path": "/account/password", "scheme": scheme,
        "client": (client, 40000), "server": ("127.0.0.1", 8025), "query_string": b"",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    })


def test_passwords_travel_only_over_tls_or_loopback() -> None:
    assert not secure_enough(request("192.0.2.10"), plaintext_auth=False)
    assert secure_enough(request("192.0.2.10"), plaintext_auth=True)
    assert secure_enough(request("192.0.2.10", "https"), plaintext_auth=False)
    # A remote client cannot claim TLS with a header.
    assert not secure_enough(request("192.0.2.10", x_forwarded_proto="https"), False)
    for loopback in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert secure_enough(request(loopback), False), loopback
    assert secure_enough(request("::1", x_forwarded_proto="https"), False)
    assert not secure_enough(request("127.0.0.1", x_forwarded_proto="http"), False)
    assert not secure_enough(request("::ffff:192.0.2.1"), False)


def test_the_client_is_the_proxy_s_last_forwarded_address_only_behind_loopback() -> None:
    assert client_of(request("127.0.0.1", x_forwarded_for="10.0.0.1, 203.0.113.5")) == (
        "203.0.113.5")
    assert client_of(request("192.0.2.10", x_forwarded_for="203.0.113.5")) == "192.0.2.10"
    assert client_of(request("127.0.0.1")) == "127.0.0.1"
